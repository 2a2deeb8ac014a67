"""Repeated requests: a `request_id` the user already sent gets the first `chat.accepted`
again, and is worked on by one process at a time (a lock in Redis), so that a client retrying
after a dropped connection never creates a second message or a second answer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from chat import limits, selectors
from chat.errors import ChatError
from chat.protocol import ChatAccepted, UserMessageInfo
from chat.redis_client import as_text, redis_client

# Longest a request holds its request_id's lock (moderation with a guard model included).
REQUEST_LOCK_SECONDS = 30
# How long a regenerate's request_id is remembered (a chat.send's is in its stored message).
REGENERATE_REQUEST_TTL_SECONDS = 24 * 3600


def accepted(*, request_id: str, user_message: dict, assistant: dict) -> ChatAccepted:
    return ChatAccepted(
        request_id=request_id,
        conversation_id=user_message["conversation_id"],
        user_message=UserMessageInfo(
            id=user_message["id"],
            parent_id=user_message["parent_id"],
            content=user_message["content"],
            created_at=user_message["created_at"],
        ),
        generation_id=assistant["generation_id"],
        assistant_message_id=assistant["id"],
    )


def message_first_answer(*, message: dict, owner_id: int) -> dict | None:
    """The first assistant message under the user message `message` (the one its chat.send
    started; later ones are regenerations)."""
    answers = [
        reply
        for reply in selectors.message_replies(message_id=message["id"], owner_id=owner_id)
        if reply.get("role") == "assistant"
    ]
    return min(answers, key=lambda reply: reply["created_at"]) if answers else None


def accepted_again(*, owner_id: int, request_id: str) -> ChatAccepted | None:
    existing = selectors.message_by_request(owner_id=owner_id, request_id=request_id)
    if existing is None:
        return None
    answer = message_first_answer(message=existing, owner_id=owner_id)
    if answer is None:
        raise ChatError("bad_request", "request_id: already used for another message.")
    return accepted(request_id=request_id, user_message=existing, assistant=answer)


@contextlib.contextmanager
def lock(*, owner_id: int, request_id: str) -> Iterator[None]:
    """Serialise work on one (user, request_id) across processes. A real MongoDB also has a
    unique index on it; the embedded stand-ins do not, and two racing connections must still
    create one message."""
    lock = redis_client().lock(
        limits.key("request", owner_id, request_id),
        timeout=REQUEST_LOCK_SECONDS,
        blocking_timeout=REQUEST_LOCK_SECONDS,
    )
    if not lock.acquire():
        raise ChatError("busy", "This request is still being processed.", retry_after=1)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # expired meanwhile: nothing left to release
            lock.release()


def regenerated_again(*, owner_id: int, request_id: str) -> ChatAccepted | None:
    raw = redis_client().get(limits.key("regenerate", owner_id, request_id))
    if raw is None:
        return None
    sibling = selectors.message_by_generation(generation_id=as_text(raw), owner_id=owner_id)
    question = (
        selectors.message_get(message_id=sibling["parent_id"], owner_id=owner_id)
        if sibling
        else None
    )
    if sibling is None or question is None:
        return None
    return accepted(request_id=request_id, user_message=question, assistant=sibling)


def regenerate_remember(*, owner_id: int, request_id: str, generation_id: str) -> None:
    """Remember which generation a regenerate's `request_id` started."""
    redis_client().set(
        limits.key("regenerate", owner_id, request_id),
        generation_id,
        ex=REGENERATE_REQUEST_TTL_SECONDS,
    )
