"""The conversation store's database handle: one client per process, chosen by MONGODB_URL.

- `mongodb://`, `mongodb+srv://`: a real MongoDB server through pymongo (production, compose).
  Its indexes are created by `python manage.py store_indexes`.
- `mongomock://`: mongomock, in memory, for tests.
- `embedded://<directory>`: `chat.store.embedded`, a persistent stand-in for machines without a
  server. A relative directory is taken from the project's root.

Why the embedded stand-in is our own small adapter on SQLite (measured on this machine):
tinymongo 1.3.1 has memory, JSON (TinyDB), SQLite, sharded SQLite, DuckDB, Parquet, PostgreSQL
and MySQL backends. Its SQLite backend is multi-process safe (a file lock around every write,
`BEGIN IMMEDIATE`, WAL; three processes doing 1,200 `$inc`s lost none) and covers our queries
(unique sparse and partial indexes included; descending index keys are refused), but its inserts
cost time proportional to the collection's size: 5 ms each at 250 documents, 13 ms at 1,000
(with or without indexes), and 10,000 inserts did not finish in 10 minutes. This adapter does
1,000 conversation turns in about 1 s, and a lookup by id in well under 1 ms. mongomock is
complete but lives in one process's memory; persisting it through a snapshot file would rewrite
the whole store on every write. The adapter stores one JSON document per row, with SQLite
expression indexes on the fields we look up, and lets mongomock's matcher evaluate filters, so
query semantics are the same as in the tests. Two processes (Daphne and the Celery worker) write
it at once.

The store keeps to what every backend does the same way: no bulk_write, no $setOnInsert, no
$text, no $lookup, no transactions, counters with $inc, case-insensitive $regex on escaped
input for search. Ids are uuid4 hex strings that we generate. Timestamps are UTC, truncated to
milliseconds (MongoDB's precision), so cursors compare equal on every backend.

Stand-ins create their indexes themselves when opened: on the embedded store they make lookups
fast, and on both they enforce the same uniqueness (generation ids, request ids) a server has.
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from chat.store.embedded import SQLiteClient

CONVERSATIONS = "conversations"
MESSAGES = "messages"

# (collection, keys, options). `store_indexes` creates them on a server.
INDEXES: list[tuple[str, list[tuple[str, int]], dict[str, Any]]] = [
    (CONVERSATIONS, [("owner_id", 1), ("updated_at", -1)], {"name": "owner_updated"}),
    # With the owner as well: SQLite's planner then prefers it to "owner" for a conversation.
    (MESSAGES, [("conversation_id", 1), ("owner_id", 1)], {"name": "conversation_owner"}),
    # A conversation's messages in order, a page or a batch at a time (detail and export).
    (
        MESSAGES,
        [("conversation_id", 1), ("owner_id", 1), ("position", 1)],
        {"name": "conversation_position"},
    ),
    (MESSAGES, [("owner_id", 1)], {"name": "owner"}),
    # A message's replies (a repeated request_id finds its first answer without reading the
    # conversation).
    (MESSAGES, [("parent_id", 1), ("owner_id", 1)], {"name": "parent_owner"}),
    # Live generations of every owner, newest first (the staff console, the reaper).
    (MESSAGES, [("state", 1), ("created_at", -1)], {"name": "state_created"}),
    (
        MESSAGES,
        [("generation_id", 1)],
        {"name": "generation_unique", "unique": True, "sparse": True},
    ),
    (
        MESSAGES,
        [("owner_id", 1), ("request_id", 1)],
        {
            "name": "owner_request_unique",
            "unique": True,
            # Only user messages carry a request_id; the others must not collide on null.
            "partialFilterExpression": {"request_id": {"$type": "string"}},
        },
    ),
]

_lock = threading.Lock()
_state: dict[str, Any] = {"key": None, "client": None, "db": None}


def store_backend(url: str | None = None) -> str:
    """ "mongodb", "mongomock" or "embedded", from the URL's scheme."""
    scheme = (url or settings.MONGODB_URL).split("://", 1)[0]
    return {"mongodb+srv": "mongodb"}.get(scheme, scheme)


def _embedded_directory(url: str) -> Path:
    path = Path(url.split("://", 1)[1] or "var/store")
    return path if path.is_absolute() else Path(settings.BASE_DIR) / path


def indexes_ensure(db: Any) -> list[str]:
    """Create the store's indexes (idempotent). Returns their names."""
    names = []
    for collection, keys, options in INDEXES:
        names.append(db[collection].create_index(keys, **options))
    return names


def _open(url: str, name: str) -> tuple[Any, Any]:
    backend = store_backend(url)
    if backend == "mongodb":
        import pymongo

        client: Any = pymongo.MongoClient(url, tz_aware=True, tzinfo=UTC, connect=False)
        return client, client[name]
    if backend == "mongomock":
        import mongomock

        client = mongomock.MongoClient(tz_aware=True)
    elif backend == "embedded":
        client = SQLiteClient(_embedded_directory(url))
    else:  # settings already refuse other schemes; this guards direct calls
        raise ValueError(f"unsupported MONGODB_URL scheme: {backend}")
    db = client[name]
    indexes_ensure(db)
    return client, db


def get_db() -> Any:
    """This process's database handle (pymongo `Database` or a stand-in with the same API).

    Created on first use, and again in a forked child (pymongo clients are not fork-safe) or
    when the settings changed (tests switch backends).
    """
    key = (os.getpid(), settings.MONGODB_URL, settings.MONGODB_DB)
    if _state["key"] == key:
        return _state["db"]
    with _lock:
        if _state["key"] != key:
            previous_pid = _state["key"][0] if _state["key"] else None
            if previous_pid == os.getpid() and hasattr(_state["client"], "close"):
                _state["client"].close()  # a forked child must not close its parent's sockets
            client, db = _open(settings.MONGODB_URL, settings.MONGODB_DB)
            _state.update(key=key, client=client, db=db)
        return _state["db"]


def reset_store_for_tests() -> None:
    """Empty both collections (indexes stay). Refuses a real server's non-test database."""
    db = get_db()
    if store_backend() == "mongodb" and "test" not in settings.MONGODB_DB:
        raise RuntimeError("refusing to empty a MongoDB database whose name lacks 'test'")
    for collection in (CONVERSATIONS, MESSAGES):
        db[collection].delete_many({})


# --- small helpers shared by services and selectors -----------------------------------------------


def new_id() -> str:
    return uuid.uuid4().hex


def now() -> datetime:
    """The current UTC time at MongoDB's millisecond precision."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        # mongomock hands back its own UTC tzinfo class, pymongo may be configured naive.
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def document_out(document: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored document as a plain dict: `id` instead of `_id`, aware UTC datetimes."""
    if document is None:
        return None
    out = {"id": document["_id"]}
    out.update((key, _plain(value)) for key, value in document.items() if key != "_id")
    return out
