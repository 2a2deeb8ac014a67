"""Reads from the conversation store. Every query carries the owner; another owner's id, a
deleted conversation and an id that never existed all look the same: None or empty."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.core import signing

from chat.errors import ChatError
from chat.store import CONVERSATIONS, MESSAGES, document_out, get_db

ID_MAX_CHARS = 64
SEARCH_MAX_CHARS = 200
LIST_MAX_LIMIT = 100
_CURSOR_SALT = "chat.conversation_list"


def valid_id(value: Any) -> bool:
    """Ids are strings we generated; anything else (a dict would be a query operator!) is no id."""
    return isinstance(value, str) and 0 < len(value) <= ID_MAX_CHARS


def _not_deleted(owner_id: int, **fields: Any) -> dict[str, Any]:
    return {**fields, "owner_id": owner_id, "deleted": {"$ne": True}}


def _one(collection: str, query: dict[str, Any]) -> dict | None:
    return document_out(get_db()[collection].find_one(query))


# --- conversations ----------------------------------------------------------------------------


def conversation_get(*, conversation_id: str, owner_id: int) -> dict | None:
    if not valid_id(conversation_id):
        return None
    return _one(CONVERSATIONS, _not_deleted(owner_id, _id=conversation_id))


def _cursor_encode(document: dict[str, Any]) -> str:
    return signing.dumps(
        {"u": document["updated_at"].isoformat(), "i": document["_id"]}, salt=_CURSOR_SALT
    )


def _cursor_decode(cursor: str) -> tuple[datetime, str]:
    """The (updated_at, id) a page ends at. Anything we did not sign is a 400."""
    invalid = ChatError("bad_request", "cursor: invalid", fields={"cursor": ["invalid"]})
    if not isinstance(cursor, str) or len(cursor) > 512:
        raise invalid
    try:
        data = signing.loads(cursor, salt=_CURSOR_SALT)
        updated_at = datetime.fromisoformat(data["u"])
        identifier = data["i"]
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise invalid from None
    if updated_at.tzinfo is None or not valid_id(identifier):
        raise invalid
    return updated_at, identifier


def _search_filter(*, owner_id: int, q: str) -> dict[str, Any] | None:
    """Title or message text contains `q`, case-insensitively. Literal text, not a pattern."""
    if not isinstance(q, str) or len(q) > SEARCH_MAX_CHARS:
        raise ChatError(
            "bad_request",
            f"q: at most {SEARCH_MAX_CHARS} characters",
            fields={"q": [f"at most {SEARCH_MAX_CHARS} characters"]},
        )
    text = q.strip()
    if not text:
        return None
    pattern = {"$regex": re.escape(text), "$options": "i"}
    in_messages = get_db()[MESSAGES].distinct(
        "conversation_id", _not_deleted(owner_id, content=pattern)
    )
    return {"$or": [{"title": pattern}, {"_id": {"$in": in_messages}}]}


def conversation_list(
    *,
    owner_id: int,
    cursor: str | None = None,
    limit: int = 20,
    q: str | None = None,
    archived: bool | None = None,
) -> tuple[list[dict], str | None]:
    """One page of the owner's conversations, most recently updated first, and the cursor of
    the next page (None on the last). `archived`: None lists both kinds."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= LIST_MAX_LIMIT:
        raise ChatError(
            "bad_request",
            f"limit: between 1 and {LIST_MAX_LIMIT}",
            fields={"limit": [f"between 1 and {LIST_MAX_LIMIT}"]},
        )
    conditions: list[dict[str, Any]] = [_not_deleted(owner_id)]
    if archived is not None:
        conditions.append({"archived": bool(archived)})
    if q is not None:
        search = _search_filter(owner_id=owner_id, q=q)
        if search is not None:
            conditions.append(search)
    if cursor:
        updated_at, identifier = _cursor_decode(cursor)
        conditions.append(
            {
                "$or": [
                    {"updated_at": {"$lt": updated_at}},
                    {"updated_at": updated_at, "_id": {"$lt": identifier}},
                ]
            }
        )
    query = conditions[0] if len(conditions) == 1 else {"$and": conditions}
    documents = list(
        get_db()[CONVERSATIONS].find(query, sort=[("updated_at", -1), ("_id", -1)], limit=limit + 1)
    )
    next_cursor = _cursor_encode(documents[limit - 1]) if len(documents) > limit else None
    return [document_out(item) for item in documents[:limit]], next_cursor  # type: ignore[misc]


# --- messages ---------------------------------------------------------------------------------


def message_get(*, message_id: str, owner_id: int) -> dict | None:
    if not valid_id(message_id):
        return None
    return _one(MESSAGES, _not_deleted(owner_id, _id=message_id))


def message_by_generation(*, generation_id: str, owner_id: int) -> dict | None:
    """The assistant message of a generation."""
    if not valid_id(generation_id):
        return None
    return _one(MESSAGES, _not_deleted(owner_id, generation_id=generation_id))


def message_by_request(*, owner_id: int, request_id: str) -> dict | None:
    """The user message a `chat.send` with this `request_id` stored, if any."""
    if not isinstance(request_id, str) or not request_id:
        return None
    return _one(MESSAGES, _not_deleted(owner_id, request_id=request_id))


def message_list(*, conversation_id: str, owner_id: int) -> list[dict]:
    """Every message of the conversation (all branches), in the order they were written."""
    if not valid_id(conversation_id):
        return []
    documents = get_db()[MESSAGES].find(
        _not_deleted(owner_id, conversation_id=conversation_id), sort=[("position", 1)]
    )
    return [document_out(item) for item in documents]  # type: ignore[misc]


def message_replies(*, message_id: str, owner_id: int) -> list[dict]:
    """The messages whose parent is `message_id` (an answer and its regenerations), oldest
    first. One indexed lookup: the conversation is not read."""
    if not valid_id(message_id):
        return []
    documents = get_db()[MESSAGES].find(
        _not_deleted(owner_id, parent_id=message_id), sort=[("position", 1)]
    )
    return [document_out(item) for item in documents]  # type: ignore[misc]


def message_path(*, message_id: str, owner_id: int) -> list[dict]:
    """The branch from the root down to `message_id` (both included), following parent_id."""
    message = message_get(message_id=message_id, owner_id=owner_id)
    if message is None:
        return []
    by_id = {
        item["id"]: item
        for item in message_list(conversation_id=message["conversation_id"], owner_id=owner_id)
    }
    path: list[dict] = []
    seen: set[str] = set()  # a corrupted, cyclic tree must not loop forever
    current = by_id.get(message_id)
    while current is not None and current["id"] not in seen:
        seen.add(current["id"])
        path.append(current)
        current = by_id.get(current.get("parent_id") or "")
    path.reverse()
    return path


def generation_list_stale(
    *, heartbeat_before: datetime, states: tuple[str, ...] = ("streaming",), limit: int = 100
) -> list[dict]:
    """Unfinished generations of every owner whose last heartbeat is older than
    `heartbeat_before`: for the reaper only (a system task, not a user's request). Each result
    carries its `owner_id`, to finish it through `services.generation_finish`."""
    documents = get_db()[MESSAGES].find(
        {
            "role": "assistant",
            "state": {"$in": list(states)},
            "deleted": {"$ne": True},
            "heartbeat_at": {"$lt": heartbeat_before},
        },
        sort=[("heartbeat_at", 1)],
        limit=limit,
    )
    return [document_out(item) for item in documents]  # type: ignore[misc]
