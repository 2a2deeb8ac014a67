"""Writes of the inference app, and the one place where a generation ends.

`generation_end` is called for every ending: complete, stopped, moderated, failed (engine
error, timeout) and interrupted (the reaper, or a redelivered task that finds a dead attempt).
It writes the final state to the store once (the store refuses a second final write), and only
the caller whose write won goes on to tell the generation's subscribers and record usage (unique
per generation). So a redelivered task, two reapers or a stop racing the natural end never
produce two records or two closing messages. The worker tells the client first and bills after;
a redelivered task bills an ended generation whose worker died in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, connection

from chat.protocol import (
    GenerationDone,
    GenerationError,
    GenerationQueued,
    ModerationBlocked,
    Usage,
)
from inference.models import LanguageModel, UsageRecord
from inference.titles import TITLED_STATES, title_dispatch

logger = logging.getLogger(__name__)

COST_QUANTUM = Decimal("0.000001")
# Closing messages are retried for about this long (a Redis restart); deltas are not.
FINAL_SEND_ATTEMPTS = 6
FINAL_SEND_FIRST_WAIT = 0.2

# Final store state -> the generation.error code sent for it.
ERROR_STATES = {"failed", "interrupted"}


def _chat_services() -> Any:
    return importlib.import_module("chat.services")


def group_name(generation_id: str) -> str:
    return f"gen.{generation_id}"


# --- usage ---------------------------------------------------------------------------------------


def usage_cost(
    *, model: LanguageModel | None, prompt_tokens: int, completion_tokens: int
) -> Decimal:
    """The price of a generation from the registry's prices per 1,000 tokens."""
    if model is None:
        return Decimal(0)
    cost = (
        Decimal(prompt_tokens) * model.price_prompt_per_1k
        + Decimal(completion_tokens) * model.price_completion_per_1k
    ) / 1000
    return cost.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def usage_record_create(
    *,
    generation_id: str,
    user_id: int | None,
    model_name: str,
    conversation_id: str = "",
    prompt_tokens: int,
    completion_tokens: int,
    finish_reason: str,
    time_to_first_token_ms: int | None,
    duration_ms: int,
) -> UsageRecord | None:
    """Record one ended generation. None when it was already recorded (unique generation id).
    Synchronous: call it in a thread from the engine loop."""
    model = LanguageModel.objects.filter(name=model_name).first() if model_name else None
    values = {
        "user_id": user_id,
        "model": model_name,
        "conversation_id": conversation_id or "",
        "prompt_tokens": max(0, int(prompt_tokens)),
        "completion_tokens": max(0, int(completion_tokens)),
        "cost": usage_cost(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        ),
        "finish_reason": finish_reason,
        "time_to_first_token_ms": time_to_first_token_ms,
        "duration_ms": max(0, int(duration_ms)),
    }
    try:
        record, created = UsageRecord.objects.get_or_create(
            generation_id=generation_id, defaults=values
        )
    except IntegrityError:
        # Either a racing twin won (then it exists now) or the user is gone: keep the bill.
        if UsageRecord.objects.filter(generation_id=generation_id).exists():
            return None
        values["user_id"] = None
        record, created = UsageRecord.objects.get_or_create(
            generation_id=generation_id, defaults=values
        )
    return record if created else None


# --- endings -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Ending:
    """How one generation ended, with everything the store, the bill and the client need."""

    generation_id: str
    owner_id: int
    state: str  # complete | stopped | moderated | failed | interrupted
    text: str
    seq: int
    finish_reason: str | None = None  # protocol finish_reason (done-like endings)
    error_code: str | None = None  # protocol generation.error code (failed, interrupted)
    error_message: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seq_offsets: list[int] | None = None
    model_name: str = ""
    conversation_id: str = ""
    time_to_first_token_ms: int | None = None
    duration_ms: int = 0
    categories: list[str] = field(default_factory=list)  # moderated only
    moderation_message: str = ""

    @property
    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}

    @property
    def billed_reason(self) -> str:
        return self.error_code or self.finish_reason or self.state

    def events(self) -> list[dict[str, Any]]:
        """The closing protocol messages, in order."""
        if self.state in ERROR_STATES:
            error = GenerationError(
                generation_id=self.generation_id,
                code=self.error_code or "engine_error",  # type: ignore[arg-type]
                message=self.error_message or "The answer could not be completed.",
                text=self.text,
            )
            return [error.model_dump(mode="json")]
        done = GenerationDone(
            generation_id=self.generation_id,
            finish_reason=self.finish_reason or "stop",  # type: ignore[arg-type]
            text=self.text,
            usage=Usage(**self.usage),
        ).model_dump(mode="json")
        if self.state != "moderated":
            return [done]
        blocked = ModerationBlocked(
            generation_id=self.generation_id,
            categories=self.categories,
            message=self.moderation_message,
        ).model_dump(mode="json")
        return [blocked, done]


def generation_final_write(ending: Ending) -> dict[str, Any] | None:
    """The store's final write: the final message, or None when somebody else ended it first
    (and billed it, and told the clients). Synchronous."""
    return _chat_services().generation_finish(
        generation_id=ending.generation_id,
        owner_id=ending.owner_id,
        text=ending.text,
        state=ending.state,
        finish_reason=ending.finish_reason,
        usage=ending.usage,
        seq=ending.seq,
        seq_offsets=ending.seq_offsets,
        error=ending.error_message if ending.state in ERROR_STATES else None,
        moderation=(
            {"categories": ending.categories, "message": ending.moderation_message}
            if ending.state == "moderated"
            else None
        ),
    )


def generation_bill(ending: Ending, final: dict[str, Any], *, settling: bool = False) -> bool:
    """The usage record of an ended generation and, after a first answer, its title. True when
    this call wrote the record. `settling`: a redelivered task's check of an ended generation,
    which titles only when the record was missing (its first attempt died before both).
    Synchronous."""
    try:
        try:
            created = usage_record_create(
                generation_id=ending.generation_id,
                user_id=ending.owner_id,
                model_name=ending.model_name or final.get("model") or "",
                conversation_id=ending.conversation_id or final.get("conversation_id") or "",
                prompt_tokens=ending.prompt_tokens,
                completion_tokens=ending.completion_tokens,
                finish_reason=ending.billed_reason,
                time_to_first_token_ms=ending.time_to_first_token_ms,
                duration_ms=ending.duration_ms,
            )
        except Exception:
            # The answer is stored and delivered; a billing failure must not undo that.
            logger.exception("could not record the usage of %s", ending.generation_id)
            created = None
        if created is not None and settling:
            logger.warning("billed %s on redelivery: its worker died before", ending.generation_id)
        if ending.state in TITLED_STATES and (created is not None or not settling):
            title_dispatch(final=final, owner_id=ending.owner_id)
        return created is not None
    finally:
        connection.close()  # a pool thread of the engine loop: no idle connection left behind


def stored_ending(
    message: dict[str, Any], *, state: str | None = None, error_message: str | None = None
) -> Ending:
    """An ending rebuilt from a stored generation, with the text and usage it holds: its final
    state, or `state` (an abandoned stream that is to be interrupted)."""
    state = state or message.get("state") or "interrupted"
    usage = message.get("usage") or {}
    created, heartbeat = message.get("created_at"), message.get("heartbeat_at")
    duration = (heartbeat - created).total_seconds() * 1000 if created and heartbeat else 0
    return Ending(
        generation_id=message["generation_id"],
        owner_id=message["owner_id"],
        state=state,
        text=message.get("content") or "",
        seq=int(message.get("seq") or 0),
        finish_reason=None if state in ERROR_STATES else message.get("finish_reason"),
        error_code="interrupted" if state == "interrupted" else None,
        error_message=error_message or message.get("error"),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        model_name=message.get("model") or "",
        conversation_id=message.get("conversation_id") or "",
        duration_ms=max(0, round(duration)),
    )


async def send_reliably(layer: Any, group: str, message: dict[str, Any]) -> bool:
    """A closing message, retried with backoff while the channel layer is unreachable."""
    wait = FINAL_SEND_FIRST_WAIT
    for attempt in range(FINAL_SEND_ATTEMPTS):
        try:
            await layer.group_send(group, message)
            return True
        except Exception:
            if attempt == FINAL_SEND_ATTEMPTS - 1:
                logger.warning("could not send %s to %s", message.get("type"), group, exc_info=True)
                return False
            await asyncio.sleep(wait)
            wait *= 2
    return False


async def generation_end(ending: Ending, *, layer: Any, bill_first: bool = False) -> bool:
    """End a generation: store, tell its subscribers, bill. False when it had already ended.

    The closing message goes out before the usage record, which no client waits for. A worker
    lost between the two leaves its task unacknowledged (`acks_late`), and the redelivered
    task writes the missing record (`inference.streaming.generation_run`). `bill_first`: for a
    caller nothing would retry (the reaper)."""
    final = await asyncio.to_thread(generation_final_write, ending)
    if final is None:
        return False
    if bill_first:
        await asyncio.to_thread(generation_bill, ending, final)
    for message in ending.events():
        await send_reliably(layer, group_name(ending.generation_id), message)
    if not bill_first:
        await asyncio.to_thread(generation_bill, ending, final)
    return True


# --- queue positions -----------------------------------------------------------------------------


async def queue_positions_send(*, layer: Any, started: str | None, waiting: list[str]) -> None:
    """`generation.queued`: position 0 for the one that starts, 1.. for those still waiting.
    Best effort: positions are advisory, and a resuming client reads them again."""
    updates = [(started, 0)] if started else []
    updates += [(generation_id, index) for index, generation_id in enumerate(waiting, start=1)]
    for generation_id, position in updates:
        message = GenerationQueued(generation_id=generation_id, position=position)
        with contextlib.suppress(Exception):
            await layer.group_send(group_name(generation_id), message.model_dump(mode="json"))
