"""Reads from the conversation store. Every query carries the owner; another owner's id, a
deleted conversation and an id that never existed all look the same: None or empty."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core import signing

from chat.errors import ChatError
from chat.store import CONVERSATIONS, MESSAGES, document_out, get_db

ID_MAX_CHARS = 64
SEARCH_MAX_CHARS = 200
LIST_MAX_LIMIT = 100
_CURSOR_SALT = "chat.conversation_list"
_MESSAGE_CURSOR_SALT = "chat.message_page"
# Messages read from the store at a time where a whole conversation is written out (export).
MESSAGE_BATCH = 50
# (position, id) of a message: where a page of messages ends.
MessageKey = tuple[int, str]


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


INVALID_CURSOR = ChatError("bad_request", "cursor: invalid", fields={"cursor": ["invalid"]})


def cursor_data(cursor: str, salt: str) -> dict[str, Any]:
    """What we signed into `cursor`. Anything we did not sign is a 400."""
    if not isinstance(cursor, str) or len(cursor) > 512:
        raise INVALID_CURSOR
    try:
        data = signing.loads(cursor, salt=salt)
    except signing.BadSignature:
        raise INVALID_CURSOR from None
    if not isinstance(data, dict):
        raise INVALID_CURSOR
    return data


def _cursor_decode(cursor: str) -> tuple[datetime, str]:
    """The (updated_at, id) a page ends at."""
    data = cursor_data(cursor, _CURSOR_SALT)
    try:
        updated_at = datetime.fromisoformat(data["u"])
        identifier = data["i"]
    except (KeyError, TypeError, ValueError):
        raise INVALID_CURSOR from None
    if updated_at.tzinfo is None or not valid_id(identifier):
        raise INVALID_CURSOR
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
    # The newest CHAT_SEARCH_MAX_MESSAGES matching messages, not a `distinct` over all of the
    # user's messages: what one search reads and holds is bounded, however much they wrote.
    hits = get_db()[MESSAGES].find(
        _not_deleted(owner_id, content=pattern),
        {"conversation_id": 1},
        sort=[("created_at", -1)],
        limit=settings.CHAT_SEARCH_MAX_MESSAGES,
    )
    in_messages = list(dict.fromkeys(hit["conversation_id"] for hit in hits))
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


def message_stream(*, conversation_id: str, owner_id: int) -> Iterator[dict]:
    """Every message of the conversation, in the order they were written, read lazily: a
    MongoDB server sends them MESSAGE_BATCH at a time, so writing a whole conversation out
    holds one batch, not the conversation (the stand-ins hold their data in memory anyway)."""
    if not valid_id(conversation_id):
        return
    documents = get_db()[MESSAGES].find(
        _not_deleted(owner_id, conversation_id=conversation_id),
        sort=[("position", 1), ("_id", 1)],
    )
    if hasattr(documents, "batch_size"):  # pymongo's cursor; the stand-ins return iterators
        documents.batch_size(MESSAGE_BATCH)
    try:
        for document in documents:
            yield document_out(document)  # type: ignore[misc]
    finally:
        if hasattr(documents, "close"):
            documents.close()


def message_list(*, conversation_id: str, owner_id: int) -> list[dict]:
    """Every message of the conversation (all branches), in the order they were written."""
    if not valid_id(conversation_id):
        return []
    documents = get_db()[MESSAGES].find(
        _not_deleted(owner_id, conversation_id=conversation_id), sort=[("position", 1)]
    )
    return [document_out(item) for item in documents]  # type: ignore[misc]


def _message_key(document: dict[str, Any]) -> MessageKey:
    return int(document.get("position") or 0), str(document["_id"])


def message_window(
    *, conversation_id: str, owner_id: int, after: MessageKey | None, limit: int
) -> tuple[list[dict], MessageKey | None]:
    """Up to `limit` messages of the conversation (all branches) that come after `after`, in
    the order they were written, and the key to continue from (None after the last). Keyset
    paging on (position, id): a message written meanwhile never shifts a page."""
    if not valid_id(conversation_id):
        return [], None
    query = _not_deleted(owner_id, conversation_id=conversation_id)
    if after is not None:
        position, identifier = after
        query["$or"] = [
            {"position": {"$gt": position}},
            {"position": position, "_id": {"$gt": identifier}},
        ]
    documents = list(
        get_db()[MESSAGES].find(query, sort=[("position", 1), ("_id", 1)], limit=limit + 1)
    )
    following = _message_key(documents[limit - 1]) if len(documents) > limit else None
    return [document_out(item) for item in documents[:limit]], following  # type: ignore[misc]


def message_page(
    *, conversation_id: str, owner_id: int, cursor: str | None = None, limit: int | None = None
) -> tuple[list[dict], str | None]:
    """One page of `message_window` for the REST API: at most CHAT_MESSAGES_PAGE_MAX messages
    (the default), continued by a signed cursor."""
    most = settings.CHAT_MESSAGES_PAGE_MAX
    limit = most if limit is None else limit
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= most:
        raise ChatError(
            "bad_request",
            f"limit: between 1 and {most}",
            fields={"limit": [f"between 1 and {most}"]},
        )
    after: MessageKey | None = None
    if cursor:
        data = cursor_data(cursor, _MESSAGE_CURSOR_SALT)
        position, identifier = data.get("p"), data.get("i")
        if (
            isinstance(position, bool)
            or not isinstance(position, int)
            or not isinstance(identifier, str)
            or not valid_id(identifier)
        ):
            raise INVALID_CURSOR
        after = (position, identifier)
    documents, following = message_window(
        conversation_id=conversation_id, owner_id=owner_id, after=after, limit=limit
    )
    if following is None:
        return documents, None
    signed = signing.dumps({"p": following[0], "i": following[1]}, salt=_MESSAGE_CURSOR_SALT)
    return documents, signed


def message_replies(*, message_id: str, owner_id: int) -> list[dict]:
    """The messages whose parent is `message_id` (an answer and its regenerations), oldest
    first. One indexed lookup: the conversation is not read."""
    if not valid_id(message_id):
        return []
    documents = get_db()[MESSAGES].find(
        _not_deleted(owner_id, parent_id=message_id), sort=[("position", 1)]
    )
    return [document_out(item) for item in documents]  # type: ignore[misc]


def message_path_ids(*, message_id: str, owner_id: int) -> list[str]:
    """The ids of the branch from the root down to `message_id` (both included). Reads only
    each message's id and parent, not its text."""
    message = message_get(message_id=message_id, owner_id=owner_id)
    if message is None:
        return []
    parents = {
        item["_id"]: item.get("parent_id")
        for item in get_db()[MESSAGES].find(
            _not_deleted(owner_id, conversation_id=message["conversation_id"]),
            {"parent_id": 1},
        )
    }
    path: list[str] = []
    seen: set[str] = set()  # a corrupted, cyclic tree must not loop forever
    current: Any = message_id
    while isinstance(current, str) and current in parents and current not in seen:
        seen.add(current)
        path.append(current)
        current = parents[current]
    path.reverse()
    return path


def message_list_by_ids(*, ids: list[str], owner_id: int) -> list[dict]:
    """The messages with these ids, in the order of `ids` (missing ones left out)."""
    wanted = [identifier for identifier in ids if valid_id(identifier)]
    if not wanted:
        return []
    found = {
        item["_id"]: item
        for item in get_db()[MESSAGES].find(_not_deleted(owner_id, _id={"$in": wanted}))
    }
    return [document_out(found[i]) for i in wanted if i in found]  # type: ignore[misc]


def message_path(*, message_id: str, owner_id: int) -> list[dict]:
    """The branch from the root down to `message_id` (both included), following parent_id."""
    return message_list_by_ids(
        ids=message_path_ids(message_id=message_id, owner_id=owner_id), owner_id=owner_id
    )


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


def generation_list_live(
    *, states: tuple[str, ...], limit: int, before: tuple[datetime, str] | None = None
) -> list[dict]:
    """Unfinished generations of every owner (`queued`, `streaming`), newest first, at most
    `limit`, those created before `before` (created_at, id) when given: for the staff console
    only (`staff.selectors`), which is staff-authenticated. Each result carries its
    `owner_id`. Reads the `state_created` index."""
    query: dict[str, Any] = {
        "role": "assistant",
        "state": {"$in": list(states)},
        "deleted": {"$ne": True},
    }
    if before is not None:
        created_at, identifier = before
        query["$or"] = [
            {"created_at": {"$lt": created_at}},
            {"created_at": created_at, "_id": {"$lt": identifier}},
        ]
    documents = get_db()[MESSAGES].find(query, sort=[("created_at", -1), ("_id", -1)], limit=limit)
    return [document_out(item) for item in documents]  # type: ignore[misc]


def generation_get_any_owner(*, generation_id: str) -> dict | None:
    """The assistant message of a generation, whoever owns it: for the staff console only
    (its kill switch), which then acts through the owner-scoped paths with its `owner_id`."""
    if not valid_id(generation_id):
        return None
    return _one(MESSAGES, {"generation_id": generation_id, "deleted": {"$ne": True}})
