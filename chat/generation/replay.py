"""What a resuming client missed (`generation.subscribe`), from the delta log or the store."""

from __future__ import annotations

from chat.catalog import model_info_get
from chat.generation import deltas, lifecycle, waiting
from chat.generation.record import FINAL_STATES, QUEUED, Ending, GenerationDocument
from chat.protocol import GenerationDelta, GenerationDone, GenerationError, GenerationQueued

ReplayMessage = GenerationQueued | GenerationDelta | GenerationDone | GenerationError


def replay(*, owner_id: int, generation_id: str, after_seq: int) -> tuple[list[ReplayMessage], int]:
    """What a resuming client has missed: from the worker's delta log while the generation
    streams (see `deltas.record`), else from the stored checkpoint.

    Returns the protocol messages to send and the seq they bring the client up to. The text
    after `after_seq` comes as one delta: `seq_offsets[i]` is the text length after delta i+1.
    """
    document = lifecycle.get(owner_id=owner_id, generation_id=generation_id)
    state = document["state"]
    seq = int(document.get("seq") or 0)
    text = document.get("content") or ""
    messages: list[ReplayMessage] = []
    if state == QUEUED:
        queue = _queue_of(document)
        place = waiting.position(queue=queue, generation_id=generation_id) if queue else None
        messages.append(GenerationQueued(generation_id=generation_id, position=place or 0))
        return messages, after_seq
    if state not in FINAL_STATES:
        # The worker's log of recent deltas is newer than the store's checkpoint.
        recent = deltas.joined_after(generation_id=generation_id, after_seq=after_seq)
        if recent is not None and recent[1] > after_seq:
            missed, last_seq = recent
            messages.append(GenerationDelta(generation_id=generation_id, seq=last_seq, text=missed))
            return messages, last_seq
    if seq > after_seq:
        offsets = document.get("seq_offsets") or []
        # Without offsets the split point is unknown: the final message reconciles instead.
        start = (
            0 if after_seq == 0 else offsets[after_seq - 1] if after_seq <= len(offsets) else None
        )
        if start is not None and text[start:]:
            messages.append(
                GenerationDelta(generation_id=generation_id, seq=seq, text=text[start:])
            )
    if state in FINAL_STATES:
        messages.append(Ending.from_document(document).closing_message())
    return messages, max(seq, after_seq)


def _queue_of(document: GenerationDocument) -> str | None:
    if document.get("queue"):
        return document["queue"]
    model = model_info_get(name=document.get("model"))  # stored before queues were recorded
    return model.queue if model else None
