"""Input moderation on the real stack: a refused message never reaches the model."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest

from chat.protocol import server_message_adapter
from chatclient.client import ChatClient
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def generate_tasks_received(stack: Stack) -> int:
    # Every worker of the stack (tests/e2e/test_scale_out.py adds "worker2").
    logs = stack.log("worker") + stack.log("worker2")
    return len(re.findall(r"Task inference\.generate\[[0-9a-f-]+\] received", logs))


def test_a_blocked_message_gets_the_supportive_reply_and_never_reaches_the_model(
    live_stack: Stack,
) -> None:
    client = ChatClient(live_stack.base_url)
    client.register(f"mod-{uuid.uuid4().hex[:10]}@example.com", "correct horse battery 42")
    client.login()
    tasks_before = generate_tasks_received(live_stack)

    async def converse() -> tuple[dict, dict]:
        async with client.connect() as session:
            refused = await session.send("I want to kill myself tonight.")
            accepted = await session.send("Say hello.", options={"max_tokens": 8})
            result = await session.collect(accepted["generation_id"])
            assert result.final is not None
            return refused, result.final

    refused, done = asyncio.run(converse())

    server_message_adapter.validate_python(refused)
    assert refused["type"] == "moderation.blocked"
    assert "self-harm" in refused["categories"]
    assert refused["message"]  # the supportive reply with resources, not a generic error
    assert done["type"] == "generation.done"
    conversations = client.request("GET", "/api/conversations")["results"]
    assert len(conversations) == 1  # only the allowed message was stored
    stored = client.request("GET", f"/api/conversations/{conversations[0]['id']}")
    assert all("kill myself" not in m["content"] for m in stored["messages"])
    # One task for the allowed message; none for the refused one.
    assert generate_tasks_received(live_stack) - tasks_before == 1
