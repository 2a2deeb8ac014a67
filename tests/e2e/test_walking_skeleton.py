"""One message from a websocket client to vLLM and back, on the real stack."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from chat.protocol import server_message_adapter
from chatclient.client import ChatClient
from tests.e2e.protocol_support import assert_quiet_then_pong
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


def test_the_model_titles_a_new_conversation_after_its_first_answer(live_stack: Stack) -> None:
    client = new_client(live_stack)
    question = "How do I reverse a list in Python? Explain briefly."

    async def converse() -> tuple[dict, list[dict]]:
        async with client.connect() as session:
            accepted = await session.send(question, options={"max_tokens": 24})
            conversation_id = accepted["conversation_id"]
            await session.collect(accepted["generation_id"])
            updates = []
            # The provisional title (the first message) comes with the acceptance; the
            # model's comes after the answer, from the low-priority title task.
            while len(updates) < 2:
                updates.append(
                    await session.wait_for(
                        lambda m: (
                            m.get("type") == "conversation.updated"
                            and m.get("conversation_id") == conversation_id
                        ),
                        timeout=120,
                    )
                )
            return accepted, updates

    accepted, (provisional, titled) = asyncio.run(converse())

    assert provisional["title"] == question
    assert titled["title"] != question
    assert 2 <= len(titled["title"]) <= 60 and "\n" not in titled["title"]
    stored = client.request("GET", f"/api/conversations/{accepted['conversation_id']}")
    assert stored["title"] == titled["title"]
    print(f"model title: {titled['title']!r}")

    # A second answer in the same conversation does not title it again, and a name the user
    # chose is never replaced.
    client.request("PATCH", f"/api/conversations/{accepted['conversation_id']}", {"title": "Mine"})

    async def follow_up() -> None:
        async with client.connect() as session:
            again = await session.send(
                "And a tuple?",
                conversation_id=accepted["conversation_id"],
                options={"max_tokens": 8},
            )
            await session.collect(again["generation_id"])
            # Until past when a title task would have answered, nothing arrives (no title),
            # nor was anything set aside while collecting; then the connection still answers.
            await assert_quiet_then_pong(session, quiet_for=3)

    asyncio.run(follow_up())
    assert (
        client.request("GET", f"/api/conversations/{accepted['conversation_id']}")["title"]
        == "Mine"
    )
