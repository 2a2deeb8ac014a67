"""Admission runs where CHAT_ADMISSION_THREADS says: Channels' shared thread (1) or a pool of
admission threads, with the caller's context variables, fresh database connections, and the
same answers through the consumer."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import override_settings

from chat.generation.pool import _executor, run_admission
from tests.chat.consumer_support import Dispatched, connect
from tests.chat.store_view import stored_snapshot

pytest_plugins = ["tests.chat.consumer_support"]
pytestmark = pytest.mark.django_db(transaction=True)

MARK: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="unset")


@pytest.fixture(autouse=True)
def _pool_connections_closed() -> Iterator[None]:
    """The pool's threads keep their connections for reuse, as in a server; the test
    database can only be dropped once every thread of each pool has closed its own."""
    yield
    for threads in (2, 3):
        gate = threading.Barrier(threads, timeout=10)

        def close(gate: threading.Barrier = gate) -> None:
            gate.wait()  # one call per thread of the pool
            connection.close()

        pool = _executor(threads)
        for future in [pool.submit(close) for _ in range(threads)]:
            future.result()


def _where() -> tuple[str, str]:
    return threading.current_thread().name, MARK.get()


async def test_one_thread_keeps_channels_shared_thread() -> None:
    shared = await sync_to_async(lambda: threading.current_thread().name)()
    with override_settings(CHAT_ADMISSION_THREADS=1):
        MARK.set("sent along")
        name, mark = await run_admission(_where)
    assert name == shared
    assert not name.startswith("admission")
    assert mark == "sent along"


async def test_a_pool_runs_admissions_at_once_on_its_own_threads() -> None:
    both_in = threading.Barrier(2, timeout=10)

    def admit(tag: str) -> tuple[str, str]:
        MARK.set(tag)  # in the call's own copy of the context
        both_in.wait()  # passes only when two admissions run at the same time
        return _where()

    with override_settings(CHAT_ADMISSION_THREADS=2):
        MARK.set("caller")
        first, second = await asyncio.gather(run_admission(admit, "a"), run_admission(admit, "b"))
    assert first[0].startswith("admission") and second[0].startswith("admission")
    assert first[0] != second[0]
    assert {first[1], second[1]} == {"a", "b"}
    assert MARK.get() == "caller"


async def test_a_pool_thread_leaves_no_broken_connection_behind() -> None:
    def query() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0]

    with override_settings(CHAT_ADMISSION_THREADS=2):
        assert [await run_admission(query) for _ in range(4)] == [1, 1, 1, 1]


async def test_sends_through_the_pool_are_accepted_and_stored_once_each(
    chat_env: Dispatched, make_user: Any
) -> None:
    with override_settings(CHAT_ADMISSION_THREADS=3):
        users = [await sync_to_async(make_user)() for _ in range(4)]
        clients = [await connect(user) for user in users]
        answers = await asyncio.gather(
            *(
                client.chat_send(f"Question {i}", request_id=f"q{i}")
                for i, client in enumerate(clients)
            ),
            clients[0].chat_send("Question 0", request_id="q0"),  # a repeat, racing its first
        )
        for client in clients:
            await client.settle()
    assert [a["type"] for a in answers] == ["chat.accepted"] * 5
    assert answers[0] == answers[4]
    assert len({a["generation_id"] for a in answers}) == 4
    for user in users:
        conversations, messages = await stored_snapshot(user.pk)
        assert len(conversations) == 1
        assert [m["role"] for m in messages].count("user") == 1
    assert len(chat_env.tasks) == 4
    for client in clients:
        await client.close()
