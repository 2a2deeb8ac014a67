"""Property: no incoming frame, however hostile, causes a server error, closes the connection
(frames under the size limit) or changes what is stored. In process, on the real consumer,
auth middleware, PostgreSQL and Redis; the live version against Daphne is in tests/e2e."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from hypothesis import HealthCheck, assume, given, settings

from accounts.models import User
from tests.chat.consumer_support import Client, Dispatched, connect
from tests.chat.fuzz_frames import creates_something, frames
from tests.chat.store_view import stored_snapshot

pytest_plugins = ["tests.chat.consumer_support"]
pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = 1000
tried: list[int] = []


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # One loop for the whole property, so that one connection serves every example.
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture
def fuzz_client(
    loop: asyncio.AbstractEventLoop, chat_env: Dispatched, make_user: Any, settings: Any
) -> Iterator[tuple[Client, User]]:
    # Thousands of frames as fast as the loop goes: hostile content is under test here, not
    # the frame rate (tests/chat/test_frame_limits.py).
    settings.CHAT_FRAMES_PER_SECOND_PER_CONNECTION = 1_000_000
    settings.CHAT_FRAMES_PER_MINUTE_PER_USER = 1_000_000
    user = make_user()
    client = loop.run_until_complete(connect(user))
    yield client, user
    loop.run_until_complete(client.close())


def test_no_frame_breaks_the_connection_the_server_or_the_store(
    loop: asyncio.AbstractEventLoop,
    fuzz_client: tuple[Client, User],
    chat_env: Dispatched,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, user = fuzz_client
    before = async_to_sync(stored_snapshot)(user.pk)
    caplog.set_level(logging.ERROR)

    async def one(kind: str, payload: Any) -> None:
        if kind == "text":
            await client.send_raw(text=payload)
        else:
            await client.send_raw(data=payload)
        answers = [await client.receive()]  # validated against the protocol
        if answers[0]["type"] == "pong":
            return
        assert answers[0]["type"] == "error", answers
        assert answers[0]["code"] in {"bad_request", "not_found"}, answers
        await client.send({"type": "ping"})
        assert await client.receive() == {"type": "pong"}  # still open, still answering

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(frame=frames)
    def check(frame: tuple[str, Any]) -> None:
        kind, payload = frame
        assume(not creates_something(kind, payload))
        if kind == "text":
            assume(len(payload.encode("utf-8", "surrogatepass")) <= 65536)
        tried.append(1)
        loop.run_until_complete(one(kind, payload))

    check()

    print(f"\nfuzz: {len(tried)} frames tried")
    assert len(tried) >= EXAMPLES * 0.9
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert loop.run_until_complete(stored_snapshot(user.pk)) == before
    assert chat_env.tasks == []
