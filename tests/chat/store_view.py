"""A user's stored conversations and messages, read straight from the store's collections, to
assert that a refusal changed nothing."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async

from chat.store import CONVERSATIONS, MESSAGES, get_db


def snapshot(owner_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    db = get_db()
    return tuple(  # type: ignore[return-value]
        sorted(db[name].find({"owner_id": owner_id}), key=lambda document: document["_id"])
        for name in (CONVERSATIONS, MESSAGES)
    )


async def stored_snapshot(owner_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return await sync_to_async(snapshot)(owner_id)
