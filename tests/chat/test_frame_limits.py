"""Every client frame counts against the connection's and the user's frame limits: past them a
frame of any type is answered `rate_limited` with `retry_after`, without doing its work, and a
connection that keeps flooding is closed with 4429. In process, on the real consumer and Redis
(the same over Daphne: tests/e2e/test_frame_limits.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from pytest_django import Settings

from tests.chat.consumer_support import Dispatched, connect
from tests.chat.store_view import stored_snapshot

pytest_plugins = ["tests.chat.consumer_support"]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "ping"},
        {"type": "generation.subscribe", "generation_id": "g-unknown"},
        {"type": "generation.stop", "generation_id": "g-unknown"},
        {"type": "chat.send", "request_id": "r", "content": "hello"},
    ],
    ids=lambda frame: frame["type"],
)
async def test_each_frame_type_past_the_connection_limit_is_refused_with_retry_after(
    chat_env: Dispatched, make_user: Any, settings: Settings, frame: dict[str, Any]
) -> None:
    settings.CHAT_FRAMES_PER_SECOND_PER_CONNECTION = 3
    user = await sync_to_async(make_user)()
    client = await connect(user)
    for _ in range(3):
        await client.send({"type": "ping"})
        assert await client.receive() == {"type": "pong"}

    await client.send(frame)
    refused = await client.receive()

    assert refused["type"] == "error" and refused["code"] == "rate_limited"
    assert refused["retry_after"] >= 1
    assert refused["request_id"] == frame.get("request_id")
    # The refused frame did no work: nothing stored, nothing enqueued.
    assert await stored_snapshot(user.pk) == ([], [])
    assert chat_env.tasks == []
    await client.close()


async def test_the_user_limit_spans_their_connections_and_spares_other_users(
    chat_env: Dispatched, make_user: Any, settings: Settings
) -> None:
    settings.CHAT_FRAMES_PER_MINUTE_PER_USER = 4
    user, other = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    phone, laptop, stranger = await connect(user), await connect(user), await connect(other)
    for client in (phone, laptop, phone, laptop):
        await client.send({"type": "ping"})
        assert await client.receive() == {"type": "pong"}

    await laptop.send({"type": "ping"})
    refused = await laptop.receive()

    assert (refused["code"], refused["retry_after"] >= 1) == ("rate_limited", True)
    await stranger.send({"type": "ping"})
    assert await stranger.receive() == {"type": "pong"}
    for client in (phone, laptop, stranger):
        await client.close()


async def test_a_connection_that_keeps_flooding_is_closed_with_4429(
    chat_env: Dispatched, make_user: Any, settings: Settings
) -> None:
    settings.CHAT_FRAMES_PER_SECOND_PER_CONNECTION = 2
    settings.CHAT_FLOOD_CLOSE_AFTER_REFUSALS = 5
    user = await sync_to_async(make_user)()
    client = await connect(user)
    for _ in range(20):
        await client.send({"type": "ping"})

    answers = []
    while True:
        output = await client.communicator.receive_output(5)
        if output["type"] == "websocket.close":
            break
        answers.append(output["text"])

    assert output["code"] == 4429
    assert len(answers) == 2 + 4  # two pongs, then four refusals before the fifth closes it
    fresh = await connect(user)  # the user is not locked out: a new connection works
    await fresh.send({"type": "ping"})
    assert await fresh.receive() == {"type": "pong"}
    await fresh.close()


async def test_a_sustained_flood_is_closed_though_each_window_lets_some_frames_in(
    chat_env: Dispatched, make_user: Any, settings: Settings
) -> None:
    """A client that keeps sending faster than its limit gets a frame in each time one leaves
    the window, so its refusals never run 6 in a row; they are counted over a minute."""
    settings.CHAT_FRAMES_PER_SECOND_PER_CONNECTION = 5
    settings.CHAT_FLOOD_CLOSE_AFTER_REFUSALS = 6
    user = await sync_to_async(make_user)()
    client = await connect(user)

    answers: list[str] = []
    for burst in range(4):
        if burst:
            await asyncio.sleep(1.1)  # the per-second window empties
        for _ in range(7):
            await client.send({"type": "ping"})
        output: dict[str, Any] = {}
        for _ in range(7):
            output = await client.communicator.receive_output(5)
            if output["type"] == "websocket.close":
                break
            answers.append(json.loads(output["text"])["type"])
        if output["type"] == "websocket.close":
            break

    assert output == {"type": "websocket.close", "code": 4429}
    # Three bursts of five pongs and two refusals; the sixth refusal, in the third, closes it.
    assert answers == (["pong"] * 5 + ["error"] * 2) * 2 + ["pong"] * 5 + ["error"]
    await client.close()
