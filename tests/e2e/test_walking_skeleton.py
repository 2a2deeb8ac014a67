"""One message from a websocket client to vLLM and back, on the real stack."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from chat.client import ChatClient
from chat.protocol import server_message_adapter
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def new_client(stack: Stack) -> ChatClient:
    client = ChatClient(stack.base_url)
    client.register(f"user-{uuid.uuid4().hex[:10]}@example.com", "correct horse battery staple 42")
    client.login()
    return client


def test_a_websocket_client_gets_a_streamed_answer_that_is_stored(live_stack: Stack) -> None:
    client = new_client(live_stack)

    async def converse() -> tuple[dict, object, float]:
        async with client.connect() as session:
            sent_at = time.monotonic()
            accepted = await session.send(
                "Name three colours of the rainbow.", options={"max_tokens": 48}
            )
            result = await session.collect(accepted["generation_id"])
            return accepted, result, sent_at

    accepted, result, sent_at = asyncio.run(converse())

    assert accepted["type"] == "chat.accepted"
    for frame in [accepted, *result.deltas, result.final]:
        server_message_adapter.validate_python(frame)
    assert result.final["type"] == "generation.done"
    assert [d["seq"] for d in result.deltas] == list(range(1, len(result.deltas) + 1))
    assert result.streamed_text == result.final["text"]
    assert result.final["text"].strip()
    assert result.final["usage"]["completion_tokens"] > 0
    print(f"time to first delta: {(result.first_delta_at - sent_at) * 1000:.0f} ms")

    stored = client.request("GET", f"/api/conversations/{accepted['conversation_id']}")
    answer = next(m for m in stored["messages"] if m["id"] == accepted["assistant_message_id"])
    assert answer["state"] == "complete"
    assert answer["content"] == result.final["text"]
    assert stored["current_leaf_id"] == accepted["assistant_message_id"]
