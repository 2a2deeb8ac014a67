"""A generation's life in the store after admission: checkpoints while it streams, and the one
final write that ends it.

`finish` is called for every ending, whoever ends it: the worker (complete, stopped, moderated,
failed), a stop while it waited, the reaper or a redelivered task after a crash
(interrupted). The store refuses a second final write, so exactly one caller wins; that caller
also gives the user's concurrent-generation slot back and takes the generation out of its
model's waiting queue, here, where the generation ends.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ReturnDocument

from chat import selectors
from chat.errors import ChatError
from chat.generation import slots, waiting
from chat.generation.record import (
    ERROR_STATES,
    FINAL_STATES,
    LIVE_STATES,
    Ending,
    GenerationDocument,
    UsageCounts,
)
from chat.services import live_conversation, owner_checked
from chat.store import CONVERSATIONS, MESSAGES, document_out, get_db, now

logger = logging.getLogger(__name__)


def get(*, owner_id: int, generation_id: str) -> GenerationDocument:
    """The user's generation, else `not_found`."""
    document = selectors.message_by_generation(generation_id=generation_id, owner_id=owner_id)
    if document is None:
        raise ChatError("not_found", "No such generation.")
    return document  # type: ignore[return-value]


def _live_generation(generation_id: str, owner_id: int) -> dict[str, Any]:
    return {
        "generation_id": generation_id,
        "owner_id": owner_id,
        "deleted": {"$ne": True},
        "state": {"$in": list(LIVE_STATES)},
    }


def _usage(usage: dict | None) -> UsageCounts | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": int(usage.get("prompt_tokens") or 0),
        "completion_tokens": int(usage.get("completion_tokens") or 0),
    }


def checkpoint(
    *,
    generation_id: str,
    owner_id: int,
    text: str,
    seq: int,
    seq_offsets: list[int] | None = None,
    usage: dict | None = None,
    worker: str | None = None,
) -> None:
    """Save the text so far (state `streaming`, fresh heartbeat). Ignored once the generation
    is final, and for a checkpoint older than the stored one. `usage` so far lets the reaper
    bill an interrupted generation; `worker` names the process that streams it (the staff
    console's list of live generations)."""
    owner_checked(owner_id)
    if not selectors.valid_id(generation_id):
        return
    moment = now()
    changes: dict[str, Any] = {
        "content": text,
        "seq": seq,
        "state": "streaming",
        "heartbeat_at": moment,
        "updated_at": moment,
    }
    if seq_offsets is not None:
        changes["seq_offsets"] = list(seq_offsets)
    if usage is not None:
        changes["usage"] = _usage(usage)
    if worker:
        changes["worker"] = worker
    query = _live_generation(generation_id, owner_id) | {"seq": {"$lte": seq}}
    get_db()[MESSAGES].update_one(query, {"$set": changes})


def finish(ending: Ending) -> GenerationDocument | None:
    """End the generation in the store, once: its final text, state, finish reason or error,
    and usage. None when it was already final (a redelivered task, a stop or the reaper came
    first) or does not exist. The caller that wins frees the generation's slot and its place
    in the waiting queue. Synchronous."""
    document = _final_write(ending)
    if document is not None:
        _release(document)
    return document


def _final_write(ending: Ending) -> GenerationDocument | None:
    owner_id = owner_checked(ending.owner_id)
    if ending.state not in FINAL_STATES:
        raise ValueError(f"state must be one of {sorted(FINAL_STATES)}, not {ending.state!r}")
    if not selectors.valid_id(ending.generation_id):
        return None
    moment = now()
    changes: dict[str, Any] = {
        "content": ending.text,
        "state": ending.state,
        "finish_reason": ending.finish_reason,
        "usage": _usage(dict(ending.usage)),
        "seq": ending.seq,
        "heartbeat_at": moment,
        "updated_at": moment,
    }
    if ending.seq_offsets is not None:
        changes["seq_offsets"] = list(ending.seq_offsets)
    if ending.cached:
        changes["cached"], changes["saved_tokens"] = True, ending.saved_tokens
    if ending.model_version_id is not None:
        # The version it ran on (a queued turn whose version retired meanwhile ran on the
        # active one).
        changes["model_version_id"] = int(ending.model_version_id)
        changes["model_version"] = ending.model_version
    if ending.state in ERROR_STATES:
        if ending.error_message is not None:
            changes["error"] = ending.error_message
        if ending.error_code is not None:
            changes["error_code"] = ending.error_code
    if ending.state == "moderated":
        changes["moderation"] = {
            "categories": list(ending.categories),
            "message": ending.moderation_message,
        }
    db = get_db()
    document = db[MESSAGES].find_one_and_update(
        _live_generation(ending.generation_id, owner_id),
        {"$set": changes},
        return_document=ReturnDocument.AFTER,
    )
    if document is None:
        return None
    db[CONVERSATIONS].update_one(
        live_conversation(document["conversation_id"], owner_id), {"$set": {"updated_at": moment}}
    )
    return document_out(document)  # type: ignore[return-value]


def _release(document: GenerationDocument) -> None:
    """The slot and the waiting-queue entry of an ended generation. Redis trouble leaves them
    to their backstops: the slot reconcile at the limit, the queue's age-out."""
    generation_id = document["generation_id"]
    try:
        slots.release(owner_id=document["owner_id"], generation_id=generation_id)
        if document.get("queue"):
            waiting.remove(queue=document["queue"], generation_id=generation_id)
    except Exception:
        logger.warning("could not free the slot of %s", generation_id, exc_info=True)
