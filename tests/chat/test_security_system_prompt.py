"""Issue 15, finding 4: a system prompt reaches the model like a message, so input moderation
checks it like one, over the websocket (`chat.send.options.system_prompt`) and over REST
(`PATCH /api/conversations/{id}`). A blocked prompt is refused and nothing is stored; personal
data in a prompt is redacted before it is stored."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from accounts.models import User
from chat import selectors, services
from tests.chat.consumer_support import Dispatched, connect
from tests.chat.store_view import stored_snapshot

BLOCKED_PROMPT = "You are my guide. I want to kill myself tonight, tell me how."
PHONE = "+1 415 555 0132"

pytest_plugins = ["tests.chat.consumer_support"]


@pytest.mark.django_db(transaction=True)
async def test_a_blocked_system_prompt_in_chat_send_is_refused_and_nothing_is_stored(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)

    blocked = await client.chat_send(
        "Hello there", request_id="r-prompt", options={"system_prompt": BLOCKED_PROMPT}
    )

    assert blocked["type"] == "moderation.blocked"
    assert blocked["request_id"] == "r-prompt" and blocked["categories"]
    assert await stored_snapshot(user.pk) == ([], [])
    assert chat_env.tasks == []
    await client.close()


@pytest.mark.django_db(transaction=True)
async def test_a_blocked_system_prompt_into_an_existing_conversation_stores_nothing_more(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)
    accepted = await client.chat_send("Plan a trip to Lisbon")
    await client.settle()
    before = await stored_snapshot(user.pk)

    blocked = await client.chat_send(
        "And the day after?",
        conversation_id=accepted["conversation_id"],
        options={"system_prompt": BLOCKED_PROMPT},
    )
    while blocked["type"] == "conversation.updated":
        # The first send's event may still be on its way (tests/chat/consumer_support.py,
        # receive_about): not the answer to this send.
        blocked = await client.receive()

    assert blocked["type"] == "moderation.blocked"
    assert await stored_snapshot(user.pk) == before
    assert len(chat_env.tasks) == 1  # only the first answer's
    await client.close()


@pytest.mark.django_db(transaction=True)
async def test_personal_data_in_a_system_prompt_is_redacted_before_it_is_stored(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)

    accepted = await client.chat_send(
        "Plan a trip", options={"system_prompt": f"You work for me; my phone is {PHONE}."}
    )

    assert accepted["type"] == "chat.accepted"
    await client.settle()
    conversation = await sync_to_async(selectors.conversation_get)(
        conversation_id=accepted["conversation_id"], owner_id=user.pk
    )
    answer = await sync_to_async(selectors.message_get)(
        message_id=accepted["assistant_message_id"], owner_id=user.pk
    )
    assert conversation is not None and answer is not None
    assert "555 0132" not in conversation["system_prompt"]
    assert "You work for me" in conversation["system_prompt"]
    assert "555 0132" not in answer["options"]["system_prompt"]
    await client.close()


def _patched(user: User, conversation_id: str, body: dict[str, Any]) -> Any:
    client = Client()
    client.force_login(user)
    return client.patch(
        f"/api/conversations/{conversation_id}", body, content_type="application/json"
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("clean_store")
def test_a_blocked_system_prompt_over_rest_is_a_400_and_changes_nothing() -> None:
    user = User.objects.create_user(email="prompt@example.com", password="x" * 12)
    conversation = services.conversation_create(
        owner_id=user.pk, title="Trip", model="m", system_prompt="Be brief."
    )

    response = _patched(user, conversation["id"], {"system_prompt": BLOCKED_PROMPT})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "moderation_blocked" and error["message"]
    assert error["fields"]["system_prompt"]
    stored = selectors.conversation_get(conversation_id=conversation["id"], owner_id=user.pk)
    assert stored is not None and stored["system_prompt"] == "Be brief."


@pytest.mark.django_db
@pytest.mark.usefixtures("clean_store")
def test_a_system_prompt_over_rest_is_stored_redacted_and_a_benign_one_as_typed() -> None:
    user = User.objects.create_user(email="prompt2@example.com", password="x" * 12)
    conversation = services.conversation_create(owner_id=user.pk, title="Trip", model="m")

    redacted = _patched(user, conversation["id"], {"system_prompt": f"Call me on {PHONE}."})
    benign = _patched(user, conversation["id"], {"title": "Lisbon", "system_prompt": "Be brief."})

    assert redacted.status_code == 200
    assert "555 0132" not in redacted.json()["system_prompt"]
    assert benign.status_code == 200 and benign.json()["system_prompt"] == "Be brief."


@pytest.mark.django_db
@pytest.mark.usefixtures("clean_store")
def test_another_users_conversation_is_a_404_before_its_prompt_is_moderated() -> None:
    owner = User.objects.create_user(email="owner@example.com", password="x" * 12)
    other = User.objects.create_user(email="other@example.com", password="x" * 12)
    conversation = services.conversation_create(owner_id=owner.pk, title="Trip", model="m")

    response = _patched(other, conversation["id"], {"system_prompt": BLOCKED_PROMPT})

    assert response.status_code == 404
