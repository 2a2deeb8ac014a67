"""Writes of the inference app: usage records, and the worker's side of a generation's end.

`generation_end` is called for every ending: complete, stopped, moderated, failed (engine
error, timeout) and interrupted (the reaper, or a redelivered task that finds a dead attempt).
It ends the generation in the store once (`chat.generation.lifecycle.finish`, which also frees
its slot), and only the caller whose write won goes on to tell the generation's subscribers
and record usage (unique per generation). So a redelivered task, two reapers or a stop racing
the natural end never produce two records or two closing messages. The worker tells the client
first and bills after; a redelivered task bills an ended generation whose worker died between.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection

from chat import events
from chat.generation import lifecycle
from chat.generation.record import Ending, GenerationDocument
from chat.protocol import GenerationQueued
from config import metrics
from inference.models import LanguageModel, UsageRecord
from inference.titles import TITLED_STATES, title_dispatch

logger = logging.getLogger(__name__)

COST_QUANTUM = Decimal("0.000001")


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
    source: str = UsageRecord.Source.WS,
    api_key_id: int | None = None,
    cached: bool = False,
    saved_tokens: int = 0,
    model_version_id: int | None = None,
    model_version: str = "",
) -> UsageRecord | None:
    """Record one ended generation, with where it was asked for (`source`, and the API key).
    None when it was already recorded (unique generation id). Synchronous: call it in a thread
    from the engine loop."""
    model = LanguageModel.objects.filter(name=model_name).first() if model_name else None
    plan = None
    if user_id is not None:  # the plan the answer is billed under, kept with the bill
        owners = get_user_model().objects.filter(pk=user_id)
        plan = owners.values_list("plan__name", flat=True).first()
    values = {
        "user_id": user_id,
        "model": model_name,
        "model_version_id": model_version_id,
        "model_version": model_version or "",
        "conversation_id": conversation_id or "",
        "prompt_tokens": max(0, int(prompt_tokens)),
        "completion_tokens": max(0, int(completion_tokens)),
        "cost": usage_cost(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        ),
        "finish_reason": finish_reason,
        "time_to_first_token_ms": time_to_first_token_ms,
        "duration_ms": max(0, int(duration_ms)),
        "source": source,
        "api_key_id": api_key_id,
        "cached": cached,
        "saved_tokens": max(0, int(saved_tokens)),
        "plan": plan or "",
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


def generation_bill(
    ending: Ending, final: GenerationDocument | dict[str, Any], *, settling: bool = False
) -> bool:
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
                source=final.get("source") or UsageRecord.Source.WS,
                api_key_id=final.get("api_key_id"),
                cached=ending.cached,
                saved_tokens=ending.saved_tokens,
                model_version_id=ending.model_version_id or final.get("model_version_id"),
                model_version=ending.model_version or final.get("model_version") or "",
            )
        except Exception:
            # The answer is stored and delivered; a billing failure must not undo that.
            logger.exception("could not record the usage of %s", ending.generation_id)
            created = None
        if created is not None:
            metrics.generation_ended(
                model=ending.model_name or final.get("model") or "",
                finish_reason=ending.billed_reason,
                prompt_tokens=ending.prompt_tokens,
                completion_tokens=ending.completion_tokens,
                time_to_first_token_ms=ending.time_to_first_token_ms,
            )
        if created is not None and settling:
            logger.warning("billed %s on redelivery: its worker died before", ending.generation_id)
        if ending.state in TITLED_STATES and (created is not None or not settling):
            title_dispatch(final=dict(final), owner_id=ending.owner_id)
        return created is not None
    finally:
        connection.close()  # a pool thread of the engine loop: no idle connection left behind


async def generation_end(ending: Ending, *, layer: Any, bill_first: bool = False) -> bool:
    """End a generation: store, tell its subscribers, bill. False when it had already ended.

    The closing message goes out before the usage record, which no client waits for. A worker
    lost between the two leaves its task unacknowledged (`acks_late`), and the redelivered
    task writes the missing record (`inference.streaming.generation_run`). `bill_first`: for a
    caller nothing would retry (the reaper)."""
    final = await asyncio.to_thread(lifecycle.finish, ending)
    if final is None:
        return False
    if bill_first:
        await asyncio.to_thread(generation_bill, ending, final)
    for message in ending.closing_messages():
        await events.to_generation(ending.generation_id, message, layer=layer, reliably=True)
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
        await events.to_generation(generation_id, message, layer=layer)
