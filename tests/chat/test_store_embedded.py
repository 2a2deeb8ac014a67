"""The embedded stand-in as Daphne and the Celery worker use it: several processes on one file,
across restarts. Child processes are real (`spawn`: a fresh interpreter, like a restart)."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from chat import selectors, services
from chat.generation import lifecycle
from chat.generation.record import Ending
from chat.store import get_db
from chat.store.embedded import SQLiteClient

OWNER = 1
WRITES_PER_PROCESS = 100


def _child_setup(url: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.conf import settings

    django.setup()
    # Importing this module may already have read the settings (with the parent's defaults).
    settings.MONGODB_URL = url


def _child_read_titles(url: str, queue: Any) -> None:
    _child_setup(url)
    page, _ = selectors.conversation_list(owner_id=OWNER, limit=100)
    queue.put(sorted(item["title"] for item in page))


def _child_write(
    url: str, conversation_id: str, generation_ids: list[str], name: str, start: Any, queue: Any
) -> None:
    """Append user messages to one conversation and race to finish the same generations."""
    _child_setup(url)
    start.wait(timeout=60)  # both processes write at the same time, not one after the other
    won = 0
    parent = None
    for index in range(WRITES_PER_PROCESS):
        message = services.message_create_user(
            conversation_id=conversation_id,
            owner_id=OWNER,
            parent_id=parent,
            content=f"{name} {index}",
            request_id=f"{name}-{index}",
        )
        parent = message["id"]
        generation_id = generation_ids[index % len(generation_ids)]
        lifecycle.checkpoint(generation_id=generation_id, owner_id=OWNER, text=name, seq=index)
        finished = lifecycle.finish(
            Ending(
                generation_id=generation_id,
                owner_id=OWNER,
                text=name,
                state="complete",
                finish_reason="stop",
                seq=index + 1,
            )
        )
        won += finished is not None
    queue.put(won)


def _run(target: Any, *args: Any, barrier: bool = False) -> list[Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    if barrier:
        start = context.Barrier(len(args))
        args = tuple((*call, start) for call in args)
    processes = [context.Process(target=target, args=(*call, queue)) for call in args]
    for process in processes:
        process.start()
    results = [queue.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    return results


@pytest.fixture
def embedded_url(settings: Any, tmp_path: Path) -> str:
    url = f"embedded://{tmp_path / 'store'}"
    settings.MONGODB_URL = url
    return url


def test_data_survives_a_restart(embedded_url: str) -> None:
    for title in ("first", "second"):
        services.conversation_create(owner_id=OWNER, title=title, model="m")
    get_db().client.close()

    (titles,) = _run(_child_read_titles, (embedded_url,))

    assert titles == ["first", "second"]


def test_two_processes_writing_at_once_lose_nothing(embedded_url: str) -> None:
    conversation = services.conversation_create(owner_id=OWNER, title="shared", model="m")
    question = services.message_create_user(
        conversation_id=conversation["id"],
        owner_id=OWNER,
        parent_id=None,
        content="q",
        request_id=None,
    )
    generation_ids = [
        services.message_create_assistant(
            conversation_id=conversation["id"], owner_id=OWNER, parent_id=question["id"], model="m"
        )["generation_id"]
        for _ in range(20)
    ]

    wins = _run(
        _child_write,
        (embedded_url, conversation["id"], generation_ids, "a"),
        (embedded_url, conversation["id"], generation_ids, "b"),
        barrier=True,
    )

    messages = selectors.message_list(conversation_id=conversation["id"], owner_id=OWNER)
    users = [m for m in messages if m["role"] == "user" and m["content"] != "q"]
    stored = selectors.conversation_get(conversation_id=conversation["id"], owner_id=OWNER)
    assert len(users) == 2 * WRITES_PER_PROCESS
    assert {m["content"] for m in users} == {
        f"{name} {index}" for name in "ab" for index in range(WRITES_PER_PROCESS)
    }
    assert stored is not None and stored["message_count"] == len(messages)
    assert len({m["position"] for m in messages}) == len(messages)
    assert sum(wins) == len(generation_ids)  # every generation finished exactly once


def test_a_new_client_on_the_same_directory_sees_committed_writes(tmp_path: Path) -> None:
    writer = SQLiteClient(tmp_path)["chat"]["things"]
    reader = SQLiteClient(tmp_path)["chat"]["things"]

    writer.insert_one({"_id": "a", "n": 1})
    writer.update_one({"_id": "a"}, {"$inc": {"n": 2}})

    assert reader.find_one({"_id": "a"}) == {"_id": "a", "n": 3}


def _files_open_on(path: Path) -> int:
    """This process's open file descriptors on `path` and its WAL files."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(str(path))
    return count


def test_a_threads_connections_close_when_the_thread_ends(tmp_path: Path) -> None:
    """Without waiting for the cyclic collector (a connection's statement cache refers back to
    it): the reaper's short-lived threads piled up open connections and their page caches."""
    client = SQLiteClient(tmp_path)
    path = client.directory / "chat.sqlite3"
    client["chat"]["things"].insert_one({"_id": "main"})
    held_by_this_thread = _files_open_on(path)
    during: list[int] = []
    after: list[int] = []

    def work() -> None:
        client["chat"]["things"].insert_one({"_id": threading.current_thread().name})
        during.append(_files_open_on(path))

    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in range(3):
            thread = threading.Thread(target=work)
            thread.start()
            thread.join()
            after.append(_files_open_on(path))
    finally:
        if collecting:
            gc.enable()
    assert all(count > held_by_this_thread for count in during)  # its own connection
    # Closed with its thread. SQLite keeps one closed descriptor of a file that another
    # connection of the process has locked, for reuse, hence "at most one more": not growing.
    assert after[0] <= held_by_this_thread + 1
    assert after == [after[0]] * 3, (held_by_this_thread, during, after)
    assert client["chat"]["things"].count_documents({}) == 4


def test_a_forked_child_opens_its_own_client(settings: Any, tmp_path: Path) -> None:
    settings.MONGODB_URL = f"embedded://{tmp_path / 'store'}"
    parent_db = get_db()
    services.conversation_create(owner_id=OWNER, title="before fork", model="m")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()

    def child() -> None:
        db = get_db()
        queue.put((db is parent_db, db["conversations"].count_documents({})))

    process = context.Process(target=child)
    process.start()
    same_object, count = queue.get(timeout=60)
    process.join(timeout=30)

    assert same_object is False
    assert count == 1
