"""Isolation matrix, in process: every websocket message that takes an id, sent by a second
user with the first user's ids, is answered `not_found` and changes nothing. (The same matrix
runs against Daphne in tests/e2e/test_protocol_isolation.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from chat.generation import stop
from tests.chat.consumer_support import Dispatched, connect, publish
from tests.chat.store_view import stored_snapshot

pytest_plugins = ["tests.chat.consumer_support"]
pytestmark = pytest.mark.django_db(transaction=True)

# Each case: a frame built from the first user's ids.
CASES: dict[str, Any] = {
    "chat.send into their conversation": lambda a: {
        "type": "chat.send",
        "request_id": "b-1",
        "conversation_id": a["conversation_id"],
        "content": "hi",
    },
    "chat.send branching from their user message": lambda a: {
        "type": "chat.send",
        "request_id": "b-2",
        "conversation_id": a["conversation_id"],
        "parent_id": a["user_message"]["id"],
        "content": "hi",
    },
    "chat.send branching from their answer": lambda a: {
        "type": "chat.send",
        "request_id": "b-3",
        "conversation_id": a["conversation_id"],
        "parent_id": a["assistant_message_id"],
        "content": "hi",
    },
    "generation.stop of their generation": lambda a: {
        "type": "generation.stop",
        "generation_id": a["generation_id"],
    },
    "generation.regenerate of their answer": lambda a: {
        "type": "generation.regenerate",
        "message_id": a["assistant_message_id"],
    },
    "generation.regenerate of their user message": lambda a: {
        "type": "generation.regenerate",
        "message_id": a["user_message"]["id"],
    },
    "generation.subscribe to their generation": lambda a: {
        "type": "generation.subscribe",
        "generation_id": a["generation_id"],
        "after_seq": 0,
    },
}


@pytest.mark.parametrize("case", list(CASES))
async def test_another_users_ids_are_not_found_and_nothing_changes(
    chat_env: Dispatched, make_user: Any, case: str
) -> None:
    owner, intruder = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    first = await connect(owner)
    theirs = await first.chat_send("My private plans", request_id="a-1")
    await first.receive()  # conversation.updated
    await first.settle()
    before = await stored_snapshot(owner.pk)
    tasks_before = len(chat_env.tasks)
    second = await connect(intruder)

    await second.send(CASES[case](theirs))
    answer = await second.receive()

    assert answer["type"] == "error" and answer["code"] == "not_found", answer
    assert "My private plans" not in str(answer)
    assert await stored_snapshot(owner.pk) == before
    assert await stored_snapshot(intruder.pk) == ([], [])
    assert len(chat_env.tasks) == tasks_before
    assert not stop.requested(generation_id=theirs["generation_id"])
    # The intruder never hears the owner's stream, even after asking for it.
    generation_id = theirs["generation_id"]
    await publish(
        generation_id,
        {"type": "generation.delta", "generation_id": generation_id, "seq": 1, "text": "secret"},
    )
    assert (await first.receive())["text"] == "secret"
    await second.assert_quiet_then_pong()
    await first.close()
    await second.close()


async def test_request_ids_are_per_user_so_reusing_one_never_returns_anothers_acceptance(
    chat_env: Dispatched, make_user: Any
) -> None:
    owner, other = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    first = await connect(owner)
    theirs = await first.chat_send("Mine", request_id="shared-id")
    second = await connect(other)

    own = await second.chat_send("Yours", request_id="shared-id")

    assert own["type"] == "chat.accepted"
    assert own["conversation_id"] != theirs["conversation_id"]
    assert own["user_message"]["content"] == "Yours"
    await first.close()
    await second.close()
