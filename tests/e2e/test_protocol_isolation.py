"""On real Daphne, Redis and the embedded store, with real websocket clients: the isolation
matrix (a second user with the first user's ids), idempotency across two connections, and a
hypothesis fuzz of incoming frames. What is stored is read back through the REST API."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings

from chatclient.client import ChatClient, ChatSession
from tests.chat.fuzz_frames import creates_something, frames
from tests.chat.test_consumer_isolation import CASES
from tests.e2e.protocol_support import (
    assert_quiet_then_pong,
    chat_send,
    new_client,
    receive,
    send_and_receive,
    snapshot,
    stack_redis,
)
from tests.support.stack import Stack

pytest_plugins = ["tests.e2e.protocol_support"]
pytestmark = pytest.mark.e2e

LIVE_FUZZ_EXAMPLES = 300


@pytest.fixture(scope="module")
def owner(protocol_stack: Stack) -> tuple[ChatClient, dict[str, Any]]:
    """A user with one conversation whose answer is queued (this stack has no worker)."""
    client = new_client(protocol_stack)

    async def start() -> dict[str, Any]:
        async with client.connect() as session:
            return await session.send("My private plans", request_id="owner-1")

    return client, asyncio.run(start())


@pytest.mark.parametrize("case", list(CASES))
def test_another_users_ids_are_not_found_over_a_real_connection(
    protocol_stack: Stack, owner: tuple[ChatClient, dict[str, Any]], case: str
) -> None:
    owner_client, theirs = owner
    before = snapshot(owner_client)
    intruder = new_client(protocol_stack)

    async def attempt() -> dict[str, Any]:
        async with intruder.connect() as session:
            answer = await send_and_receive(session, CASES[case](theirs))
            await assert_quiet_then_pong(session)  # no stream of theirs, nothing else
            return answer

    answer = asyncio.run(attempt())

    assert answer["type"] == "error" and answer["code"] == "not_found", answer
    assert "My private plans" not in str(answer)
    assert snapshot(owner_client) == before
    assert snapshot(intruder) == []
    assert not stack_redis().exists(f"chat:stop:{theirs['generation_id']}")


def test_the_same_request_on_two_connections_is_accepted_once(protocol_stack: Stack) -> None:
    client = new_client(protocol_stack)
    frame = chat_send("Sent twice, stored once")

    async def race() -> list[dict[str, Any]]:
        phone, laptop = await client.open(), await client.open()
        try:
            await asyncio.gather(phone.send_frame(frame), laptop.send_frame(frame))
            return list(await asyncio.gather(receive(phone), receive(laptop)))
        finally:
            await phone.close()
            await laptop.close()

    first, second = asyncio.run(race())

    assert first["type"] == "chat.accepted"
    assert first == second
    stored = snapshot(client)
    assert len(stored) == 1
    assert [m["role"] for m in stored[0]["messages"]] == ["user", "assistant"]


class LoopThread:
    """One event loop in a thread, so that one real connection serves every fuzz example."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def fuzz_connection(protocol_stack: Stack) -> Iterator[tuple[LoopThread, ChatSession, ChatClient]]:
    client = new_client(protocol_stack)
    runner = LoopThread()
    session = runner.run(client.open())
    yield runner, session, client
    runner.run(session.close())
    runner.close()


def test_fuzzed_frames_over_daphne_never_break_the_connection_or_the_store(
    protocol_stack: Stack, fuzz_connection: tuple[LoopThread, ChatSession, ChatClient]
) -> None:
    runner, session, client = fuzz_connection
    tried: list[int] = []

    async def one(kind: str, payload: Any) -> None:
        await session.connection.send(payload)  # str: a text frame, bytes: a binary frame
        answer = await receive(session)
        if answer["type"] != "pong":
            assert answer["type"] == "error", answer
            assert answer["code"] in {"bad_request", "not_found"}, answer
            assert await send_and_receive(session, {"type": "ping"}) == {"type": "pong"}

    @settings(
        max_examples=LIVE_FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(frame=frames)
    def check(frame: tuple[str, Any]) -> None:
        kind, payload = frame
        assume(not creates_something(kind, payload))
        if kind == "text":
            # A real server decodes UTF-8: lone surrogates cannot be sent raw (only escaped).
            assume(payload.encode("utf-8", "replace").decode("utf-8") == payload)
            assume(len(payload.encode("utf-8")) <= 65536)
        tried.append(1)
        runner.run(one(kind, payload))

    check()

    print(f"\nlive fuzz: {len(tried)} frames tried over one connection")
    assert len(tried) >= LIVE_FUZZ_EXAMPLES * 0.8
    assert snapshot(client) == []
    assert "Traceback" not in protocol_stack.log("web")
