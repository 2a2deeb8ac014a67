"""What a resuming client missed (`generation.subscribe`), read from the stored checkpoint."""

from __future__ import annotations

from chat import flags, selectors
from chat.catalog import model_info_get
from chat.errors import ChatError
from chat.protocol import GenerationDelta, GenerationDone, GenerationError, GenerationQueued, Usage
from chat.services import FINAL_STATES

# Stored final state -> the protocol's finish_reason or generation.error code.
FINISH_REASON_BY_STATE = {"stopped": "stopped", "moderated": "moderated"}
ERROR_CODE_BY_STATE = {"interrupted": "interrupted", "failed": "engine_error"}

ReplayMessage = GenerationQueued | GenerationDelta | GenerationDone | GenerationError


def generation_replay(
    *, owner_id: int, generation_id: str, after_seq: int
) -> tuple[list[ReplayMessage], int]:
    """What a resuming client has missed: from the worker's delta log while the generation
    streams (see `flags.generation_delta_record`), else from the stored checkpoint.

    Returns the protocol messages to send and the seq they bring the client up to. The text
    after `after_seq` comes as one delta: `seq_offsets[i]` is the text length after delta i+1.
    """
    message = generation_message_get(owner_id=owner_id, generation_id=generation_id)
    state = message["state"]
    seq = int(message.get("seq") or 0)
    text = message.get("content") or ""
    replay: list[ReplayMessage] = []
    if state == "queued":
        queue = _resolve_queue(message)
        position = (
            flags.waiting_position(queue=queue, generation_id=generation_id) if queue else None
        )
        replay.append(GenerationQueued(generation_id=generation_id, position=position or 0))
        return replay, after_seq
    if state not in FINAL_STATES:
        # The worker's log of recent deltas is newer than the store's checkpoint.
        recent = flags.generation_deltas_since(generation_id=generation_id, after_seq=after_seq)
        if recent is not None and recent[1] > after_seq:
            missed, last_seq = recent
            replay.append(GenerationDelta(generation_id=generation_id, seq=last_seq, text=missed))
            return replay, last_seq
    if seq > after_seq:
        offsets = message.get("seq_offsets") or []
        # Without offsets the split point is unknown: the final message reconciles instead.
        start = (
            0 if after_seq == 0 else offsets[after_seq - 1] if after_seq <= len(offsets) else None
        )
        if start is not None and text[start:]:
            replay.append(GenerationDelta(generation_id=generation_id, seq=seq, text=text[start:]))
    if state in FINAL_STATES:
        replay.append(generation_final_message(message))
    return replay, max(seq, after_seq)


def generation_message_get(*, owner_id: int, generation_id: str) -> dict:
    """The user's assistant message of `generation_id`, else `not_found`."""
    message = selectors.message_by_generation(generation_id=generation_id, owner_id=owner_id)
    if message is None:
        raise ChatError("not_found", "No such generation.")
    return message


def _resolve_queue(message: dict) -> str | None:
    model = model_info_get(name=message.get("model"))
    return model.queue if model else None


def generation_final_message(message: dict) -> GenerationDone | GenerationError:
    """The closing protocol message for a generation in a final state, from the store."""
    state = message["state"]
    text = message.get("content") or ""
    if state in ERROR_CODE_BY_STATE:
        return GenerationError(
            generation_id=message["generation_id"],
            code=ERROR_CODE_BY_STATE[state],  # type: ignore[arg-type]
            message=message.get("error") or f"The answer was {state}.",
            text=text,
        )
    usage = message.get("usage") or {}
    return GenerationDone(
        generation_id=message["generation_id"],
        finish_reason=message.get("finish_reason") or FINISH_REASON_BY_STATE.get(state, "stop"),  # type: ignore[arg-type]
        text=text,
        usage=Usage(
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
        ),
    )
