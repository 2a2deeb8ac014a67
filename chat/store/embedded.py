"""The `embedded://` stand-in: the part of pymongo's collection API the store uses, on SQLite.

Why this exists (and why not tinymongo or a persisted mongomock) is in `chat/store.py`.

One SQLite file per database, in WAL mode, one table per collection with a text primary key
`id` (the document's `_id`) and the document as JSON (`doc`). Several processes can use the
same file at once: every write is one `BEGIN IMMEDIATE` transaction that re-reads, checks and
writes, so a conditional update ("finish only if still streaming") is atomic across processes
just as on a MongoDB server. Datetimes are stored as `{"$date": "<ISO 8601>"}` and come back
as timezone-aware UTC datetimes.

Queries: top-level equality on a string or integer is pushed down to SQL as
`json_extract(doc, '$.field') = ?` (the same expression the indexes are built on); mongomock's
matcher then applies the whole filter in Python, so query semantics are mongomock's (the
backend the test suite already trusts). Supported: `insert_one`, `find` (with `sort`, `limit`,
a field projection), `find_one`, `count_documents`, `distinct`, `update_one`, `update_many`
and `find_one_and_update` with `$set`/`$inc`/`$unset`, `delete_many`, `create_index`
(uniqueness enforced; a missing or null value never conflicts, which is what the store's sparse
and partial indexes ask for), `drop`, and `command("ping")`. Anything else raises.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mongomock.filtering import filter_applies
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure

# Collection, index and field names become SQL identifiers and JSON paths: keep them plain.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_BUSY_TIMEOUT_SECONDS = 30.0


_writer_locks: dict[Path, threading.Lock] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(path: Path) -> threading.Lock:
    with _writer_locks_guard:
        return _writer_locks.setdefault(path, threading.Lock())


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise OperationFailure(f"unsupported name for the embedded store: {name!r}")
    return name


def _path_sql(field: str) -> str:
    """The SQL expression for a top-level field; indexes and queries must spell it the same."""
    return f"json_extract(doc, '$.{_check_name(field)}')"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # pymongo reads naive datetimes as UTC too
            value = value.replace(tzinfo=UTC)
        return {"$date": value.astimezone(UTC).isoformat()}
    raise TypeError(f"cannot store a {type(value).__name__} in the embedded store")


def _json_object(pairs: list[tuple[str, Any]]) -> Any:
    if len(pairs) == 1 and pairs[0][0] == "$date":
        return datetime.fromisoformat(pairs[0][1])
    return dict(pairs)


def _dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, default=_json_default, separators=(",", ":"), sort_keys=True)


def _loads(text: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(text, object_pairs_hook=_json_object)
    return result


@dataclass(frozen=True)
class InsertOneResult:
    inserted_id: Any
    acknowledged: bool = True


@dataclass(frozen=True)
class UpdateResult:
    matched_count: int
    modified_count: int
    acknowledged: bool = True
    upserted_id: Any = None


@dataclass(frozen=True)
class DeleteResult:
    deleted_count: int
    acknowledged: bool = True


class _ThreadConnections(dict[Path, sqlite3.Connection]):
    """One thread's connections, closed when the thread ends. A connection's statement cache
    refers back to it, so a dropped connection waits for Python's cyclic collector with its
    page cache (~2 MB) held: a process whose tasks run on short-lived threads (the reaper's
    `asyncio.run`, each with a new executor) piled them up between full collections."""

    def __del__(self) -> None:
        for connection in self.values():
            with suppress(Exception):  # at thread exit, on that thread
                connection.close()


class SQLiteClient:
    """A directory of databases, one SQLite file each. Not shared across `fork()`."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._pid = os.getpid()

    def __getitem__(self, name: str) -> SQLiteDatabase:
        return SQLiteDatabase(self, _check_name(name))

    get_database = __getitem__

    def connection(self, path: Path) -> sqlite3.Connection:
        """This thread's connection to `path` (sqlite3 connections belong to one thread)."""
        if os.getpid() != self._pid:
            raise RuntimeError("an embedded store client cannot be used after fork()")
        connections: _ThreadConnections = self._local.__dict__.setdefault("c", _ThreadConnections())
        connection = connections.get(path)
        if connection is None:
            # Autocommit mode: reads are single statements, writes open their own transaction.
            connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connections[path] = connection
        return connection

    def close(self) -> None:
        for connection in self._local.__dict__.pop("c", {}).values():
            connection.close()


class SQLiteDatabase:
    def __init__(self, client: SQLiteClient, name: str) -> None:
        self.client = client
        self.name = name
        self.path = client.directory / f"{name}.sqlite3"

    def __getitem__(self, name: str) -> SQLiteCollection:
        return SQLiteCollection(self, _check_name(name))

    def __getattr__(self, name: str) -> SQLiteCollection:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def connection(self) -> sqlite3.Connection:
        return self.client.connection(self.path)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock before the first read, so
        what a conditional update checks cannot change before it writes.

        Writers of this process queue on a lock first: SQLite makes a writer that finds the
        file locked poll it with growing sleeps, which a burst of writes from pool threads
        would otherwise spend waiting. Other processes still meet SQLite's own lock."""
        with _writer_lock(self.path):
            connection = self.connection()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except sqlite3.IntegrityError as error:
                connection.execute("ROLLBACK")
                raise DuplicateKeyError(f"duplicate key: {error}") from None
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def command(self, name: str) -> dict[str, Any]:
        if name != "ping":
            raise OperationFailure(f"unsupported command for the embedded store: {name!r}")
        self.connection().execute("SELECT 1").fetchone()
        return {"ok": 1.0}

    def list_collection_names(self) -> list[str]:
        rows = self.connection().execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        return sorted(name for (name,) in rows)

    def drop_collection(self, name: str) -> None:
        self[name].drop()


def _get(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _parent(document: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    *parents, last = path.split(".")
    node = document
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise OperationFailure(f"cannot create field {path!r} inside a non-document")
        node = child
    return node, last


def _apply_update(document: dict[str, Any], update: Mapping[str, Any]) -> None:
    if not update or not all(key.startswith("$") for key in update):
        raise OperationFailure("the embedded store supports operator updates only")
    for operator, fields in update.items():
        for path, value in fields.items():
            if path == "_id" or path.startswith("_id."):
                raise OperationFailure("_id cannot be changed")
            node, last = _parent(document, path)
            if operator == "$set":
                node[last] = copy.deepcopy(value)
            elif operator == "$inc":
                node[last] = (node.get(last) or 0) + value
            elif operator == "$unset":
                node.pop(last, None)
            else:
                raise OperationFailure(f"unsupported update operator: {operator}")


def _sort_key(value: Any) -> tuple[int, Any]:
    # MongoDB orders null/missing before any value.
    return (0, 0) if value is None else (1, value)


def _project(document: dict[str, Any], projection: Mapping[str, Any] | None) -> dict[str, Any]:
    if not projection:
        return document
    if not all(projection.values()):
        raise OperationFailure("the embedded store supports inclusion projections only")
    kept = {key: document[key] for key in projection if key in document}
    if "_id" in document and projection.get("_id", 1):
        kept["_id"] = document["_id"]
    return kept


class SQLiteCollection:
    def __init__(self, database: SQLiteDatabase, name: str) -> None:
        self.database = database
        self.name = name
        self._table = f'"{name}"'

    # --- plumbing ------------------------------------------------------------------------------

    def _ensure_table(self, connection: sqlite3.Connection) -> None:
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} (id TEXT PRIMARY KEY, doc TEXT NOT NULL)"
        )

    def _rows(
        self, connection: sqlite3.Connection, filter: Mapping[str, Any]
    ) -> Iterator[dict[str, Any]]:
        """The documents matching `filter`, in insertion order."""
        clauses: list[str] = []
        params: list[Any] = []
        for key, value in filter.items():
            # A superset is fine (mongomock re-checks everything); strings and integers only,
            # since JSON cannot tell 1.0 from 1 and null also means "missing" in MongoDB.
            if isinstance(value, str | int) and _NAME.match(key):
                clauses.append("id = ?" if key == "_id" else f"{_path_sql(key)} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        try:
            cursor = connection.execute(
                f"SELECT doc FROM {self._table}{where} ORDER BY rowid",  # noqa: S608
                params,
            )
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return
            raise
        for (text,) in cursor:
            document = _loads(text)
            if filter_applies(filter, document):
                yield document

    def _write_each(
        self,
        filter: Mapping[str, Any],
        change: Callable[[dict[str, Any]], None],
        *,
        many: bool,
    ) -> tuple[int, int, dict[str, Any] | None, dict[str, Any] | None]:
        """Apply `change` to the first (or every) match in one transaction. Returns matched and
        modified counts and, for the first match, the document before and after."""
        matched = modified = 0
        before_first = after_first = None
        with self.database.transaction() as connection:
            for document in list(self._rows(connection, filter)):
                before = _dumps(document)
                updated = _loads(before)
                change(updated)
                after = _dumps(updated)
                if matched == 0:
                    before_first, after_first = document, updated
                matched += 1
                if after != before:
                    modified += 1
                    connection.execute(
                        f"UPDATE {self._table} SET doc = ? WHERE id = ?",  # noqa: S608
                        (after, document["_id"]),
                    )
                if not many:
                    break
        return matched, modified, before_first, after_first

    # --- pymongo's API ---------------------------------------------------------------------------

    def insert_one(self, document: dict[str, Any]) -> InsertOneResult:
        identifier = document.get("_id")
        if not isinstance(identifier, str):
            raise OperationFailure("the embedded store needs a string _id on every document")
        with self.database.transaction() as connection:
            self._ensure_table(connection)
            connection.execute(
                f"INSERT INTO {self._table} (id, doc) VALUES (?, ?)",  # noqa: S608
                (identifier, _dumps(document)),
            )
        return InsertOneResult(identifier)

    def find(
        self,
        filter: Mapping[str, Any] | None = None,
        projection: Mapping[str, Any] | None = None,
        *,
        sort: list[tuple[str, int]] | None = None,
        limit: int = 0,
    ) -> Iterator[dict[str, Any]]:
        documents = list(self._rows(self.database.connection(), filter or {}))
        for key, direction in reversed(sort or []):
            documents.sort(key=lambda item: _sort_key(_get(item, key)), reverse=direction < 0)
        if limit:
            documents = documents[:limit]
        return iter([_project(document, projection) for document in documents])

    def find_one(
        self,
        filter: Mapping[str, Any] | None = None,
        projection: Mapping[str, Any] | None = None,
        *,
        sort: list[tuple[str, int]] | None = None,
    ) -> dict[str, Any] | None:
        return next(self.find(filter, projection, sort=sort, limit=1), None)

    def count_documents(self, filter: Mapping[str, Any]) -> int:
        return sum(1 for _ in self._rows(self.database.connection(), filter))

    def distinct(self, key: str, filter: Mapping[str, Any] | None = None) -> list[Any]:
        values: dict[str, Any] = {}
        for document in self._rows(self.database.connection(), filter or {}):
            value = _get(document, key)
            if value is not None:
                values.setdefault(_dumps({"v": value}), value)
        return list(values.values())

    def update_one(self, filter: Mapping[str, Any], update: Mapping[str, Any]) -> UpdateResult:
        matched, modified, _, _ = self._write_each(
            filter, lambda document: _apply_update(document, update), many=False
        )
        return UpdateResult(matched, modified)

    def update_many(self, filter: Mapping[str, Any], update: Mapping[str, Any]) -> UpdateResult:
        matched, modified, _, _ = self._write_each(
            filter, lambda document: _apply_update(document, update), many=True
        )
        return UpdateResult(matched, modified)

    def find_one_and_update(
        self,
        filter: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        return_document: bool = ReturnDocument.BEFORE,
    ) -> dict[str, Any] | None:
        _, _, before, after = self._write_each(
            filter, lambda document: _apply_update(document, update), many=False
        )
        return after if return_document == ReturnDocument.AFTER else before

    def delete_many(self, filter: Mapping[str, Any]) -> DeleteResult:
        with self.database.transaction() as connection:
            identifiers = [document["_id"] for document in list(self._rows(connection, filter))]
            for identifier in identifiers:
                connection.execute(
                    f"DELETE FROM {self._table} WHERE id = ?",  # noqa: S608
                    (identifier,),
                )
        return DeleteResult(len(identifiers))

    def create_index(
        self,
        keys: str | list[tuple[str, int]],
        *,
        unique: bool = False,
        sparse: bool = False,
        partialFilterExpression: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> str:
        fields = [(keys, 1)] if isinstance(keys, str) else list(keys)
        name = _check_name(name or "_".join(f"{field}_{direction}" for field, direction in fields))
        columns = ", ".join(_path_sql(field) for field, _ in fields)
        kind = "UNIQUE INDEX" if unique else "INDEX"
        with self.database.transaction() as connection:
            self._ensure_table(connection)
            connection.execute(
                f'CREATE {kind} IF NOT EXISTS "{self.name}__{name}" ON {self._table} ({columns})'
            )
        return name

    def drop(self) -> None:
        with self.database.transaction() as connection:
            connection.execute(f"DROP TABLE IF EXISTS {self._table}")
