"""The staff API on real Daphne (started as scripts/run.sh starts it), PostgreSQL, Redis and
the embedded store, with real websocket and HTTP clients: a suspension closes the user's open
websockets at once and refuses their token and API key; reactivation restores them. Queued
generations (this stack has no worker) are listed with their place in the queue."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chatclient.client import ApiRequestError, ChatClient
from tests.e2e.metrics_support import staff_client
from tests.e2e.protocol_support import chat_send, close_code, new_client, send_and_receive
from tests.support.stack import Stack

pytest_plugins = ["tests.e2e.protocol_support"]
pytestmark = pytest.mark.e2e


def status(client: ChatClient, method: str, path: str, body: Any = None) -> int:
    try:
        client.request(method, path, body)
    except ApiRequestError as error:
        return error.status
    return 200


def user_id(staff: ChatClient, email: str) -> int:
    results = staff.request("GET", f"/api/admin/users?q={email}")["results"]
    assert [row["email"] for row in results] == [email]
    return int(results[0]["id"])


def test_suspension_closes_the_users_websockets_and_reactivation_restores_access(
    protocol_stack: Stack,
) -> None:
    staff = staff_client(protocol_stack, superuser=True)
    user = new_client(protocol_stack)
    assert user.email is not None
    key = user.request("POST", "/api/keys", {"name": "script"})["key"]
    api_client = ChatClient(protocol_stack.base_url, token=key)
    target = user_id(staff, user.email)

    async def scenario() -> tuple[int | None, int | None, dict[str, Any]]:
        first, second = await user.open(), await user.open()
        for session in (first, second):
            assert await send_and_receive(session, {"type": "ping"}) == {"type": "pong"}
        loop = asyncio.get_running_loop()
        suspended = await loop.run_in_executor(
            None, staff.request, "PATCH", f"/api/admin/users/{target}", {"is_active": False}
        )
        codes = await asyncio.gather(close_code(first, 5), close_code(second, 5))
        return codes[0], codes[1], suspended

    first_code, second_code, suspended = asyncio.run(scenario())

    assert suspended["is_active"] is False
    assert first_code == second_code == 4401
    assert status(user, "GET", "/api/auth/me") == 401
    assert status(api_client, "GET", "/v1/models") == 401

    async def reconnect_refused() -> int | None:
        session = await user.open()
        return await close_code(session, 5)

    assert asyncio.run(reconnect_refused()) == 4401

    restored = staff.request("PATCH", f"/api/admin/users/{target}", {"is_active": True})

    assert restored["is_active"] is True
    assert user.request("GET", "/api/auth/me")["email"] == user.email  # the same token again
    assert status(api_client, "GET", "/v1/models") == 200  # and the same key

    async def reconnect() -> dict[str, Any]:
        async with user.connect() as session:
            return await send_and_receive(session, {"type": "ping"})

    assert asyncio.run(reconnect()) == {"type": "pong"}


def test_queued_generations_are_listed_with_their_user_and_place_and_can_be_stopped(
    protocol_stack: Stack,
) -> None:
    staff = staff_client(protocol_stack, superuser=True)
    user = new_client(protocol_stack)

    async def send() -> dict[str, Any]:
        async with user.connect() as session:
            return await send_and_receive(session, chat_send("Wait for me"))

    accepted = asyncio.run(send())
    assert accepted["type"] == "chat.accepted"
    generation_id = accepted["generation_id"]

    queued = staff.request("GET", "/api/admin/generations?state=queued")["results"]
    mine = [row for row in queued if row["generation_id"] == generation_id]
    running = staff.request("GET", "/api/admin/generations?state=running")["results"]
    stopped = staff.request("POST", f"/api/admin/generations/{generation_id}/stop")

    assert len(mine) == 1
    row = mine[0]
    assert row["state"] == "queued" and row["user"]["email"] == user.email
    assert row["queue_position"] >= 1 and row["worker"] is None
    assert row["conversation_id"] == accepted["conversation_id"]
    assert generation_id not in {r["generation_id"] for r in running}
    assert stopped == {"generation_id": generation_id, "state": "queued", "stop_requested": True}
