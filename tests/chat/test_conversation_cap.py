"""A conversation holds at most `CHAT_MAX_MESSAGES_PER_CONVERSATION` messages: a chat.send or a
regenerate into a full one is refused with `too_large`, nothing is stored or queued, and a new
conversation still works."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from pytest_django import Settings

from tests.chat.consumer_support import Client, Dispatched, connect
from tests.chat.store_view import stored_snapshot

pytest_plugins = ["tests.chat.consumer_support"]
pytestmark = pytest.mark.django_db(transaction=True)

FULL = "This conversation is at its limit of 4 messages. Start a new conversation."


async def first_send(client: Client, content: str) -> dict[str, Any]:
    """A chat.send that starts a conversation. The process's first one loads the moderation
    models, which can take longer than `receive`'s usual 10 s on a busy machine."""
    await client.send({"type": "chat.send", "request_id": uuid.uuid4().hex, "content": content})
    return await client.receive(timeout=120)


async def test_a_full_conversation_refuses_more_and_a_new_one_still_works(
    chat_env: Dispatched, make_user: Any, settings: Settings
) -> None:
    settings.CHAT_MAX_MESSAGES_PER_CONVERSATION = 4
    user = await sync_to_async(make_user)()
    client = await connect(user)
    first = await first_send(client, "One")
    await client.receive()  # conversation.updated
    conversation_id = first["conversation_id"]
    second = await client.chat_send("Two", conversation_id=conversation_id)
    assert second["type"] == "chat.accepted"  # 2 messages held: room for 2 more
    await client.settle()
    before = await stored_snapshot(user.pk)
    assert len(before[1]) == 4
    tasks = list(chat_env.tasks)

    refused = await client.chat_send("Three", conversation_id=conversation_id, request_id="r-3")
    await client.send(
        {
            "type": "generation.regenerate",
            "message_id": second["assistant_message_id"],
            "request_id": "regen-1",
        }
    )
    regenerate_refused = await client.receive()
    await client.settle()

    assert (refused["type"], refused["code"], refused["message"]) == ("error", "too_large", FULL)
    assert refused["request_id"] == "r-3"
    assert regenerate_refused["type"] == "error"
    assert (regenerate_refused["code"], regenerate_refused["message"]) == ("too_large", FULL)
    assert regenerate_refused["request_id"] == "regen-1"
    assert await stored_snapshot(user.pk) == before
    assert chat_env.tasks == tasks

    fresh = await client.chat_send("A new start", request_id="r-new")

    assert fresh["type"] == "chat.accepted" and fresh["request_id"] == "r-new"
    assert fresh["conversation_id"] != conversation_id
    await client.settle()
    _, messages = await stored_snapshot(user.pk)
    assert len(messages) == 6
    assert chat_env.generation_ids[-1] == fresh["generation_id"]
    await client.close()


async def test_the_refusal_comes_before_moderation(
    chat_env: Dispatched, make_user: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moderation import services as moderation_services

    settings.CHAT_MAX_MESSAGES_PER_CONVERSATION = 2
    user = await sync_to_async(make_user)()
    client = await connect(user)
    first = await first_send(client, "One")
    await client.receive()  # conversation.updated
    await client.settle()
    moderated: list[str] = []
    monkeypatch.setattr(
        moderation_services.pipeline, "run", lambda *a, **k: moderated.append("run")
    )

    refused = await client.chat_send("Two", conversation_id=first["conversation_id"])

    assert (refused["type"], refused["code"]) == ("error", "too_large")
    assert "limit of 2 messages" in refused["message"]
    assert moderated == []
    await client.close()
