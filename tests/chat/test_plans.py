"""Plans enforced at admission, over a real websocket stack in process (real PostgreSQL for
the plans, real Redis for the windows and slots): a tighter plan refuses what `pro` allows, a
plan change applies to the next message on the same connection, and a model outside the plan
is refused with a clear error."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts.models import Plan, User
from chat import selectors
from inference.models import LanguageModel, UsageRecord
from tests.chat.consumer_support import MODEL, Client, Dispatched, connect

pytest_plugins = ["tests.chat.consumer_support"]

OTHER_MODEL = "other-model"


def plan(name: str, **limits: Any) -> Plan:
    """A plan (transactional tests flush the migration's seed, so each test makes its own)."""
    found, _ = Plan.objects.update_or_create(name=name, defaults=limits)
    return found


def pro() -> Plan:
    return plan("pro", messages_per_minute=60, daily_messages=5000, concurrent_generations=6)


def user_on(make: Any, on: Plan, **extra: Any) -> User:
    return make(plan=on, **extra)


def move(user: User, to: Plan) -> None:
    User.objects.filter(pk=user.pk).update(plan=to)


async def send(client: Client, **fields: Any) -> dict[str, Any]:
    """A chat.send and its answer. The first of a process waits for moderation's model to
    load, which takes longer than a receive's usual 10 s on a busy machine."""
    await client.send(
        {
            "type": "chat.send",
            "request_id": uuid.uuid4().hex,
            "conversation_id": None,
            "content": "Hello there",
            **fields,
        }
    )
    return await client.receive(timeout=120)


async def test_a_user_on_a_tighter_plan_is_refused_where_a_pro_user_is_not(
    chat_env: Dispatched, make_user: Any
) -> None:
    tight = await sync_to_async(plan)("tight", messages_per_minute=1)
    limited = await connect(await sync_to_async(user_on)(make_user, tight))
    roomy = await connect(await sync_to_async(user_on)(make_user, await sync_to_async(pro)()))
    for client in (limited, roomy):
        assert (await send(client))["type"] == "chat.accepted"
        await client.receive()  # conversation.updated

    refused = await send(limited)
    accepted = await send(roomy)

    assert refused["code"] == "rate_limited" and refused["retry_after"] >= 1
    assert "At most 1 messages per minute" in refused["message"]
    assert accepted["type"] == "chat.accepted"
    assert len(chat_env.tasks) == 3
    for client in (limited, roomy):
        await client.close()


async def test_a_plan_change_applies_to_the_next_message_without_reconnecting(
    chat_env: Dispatched, make_user: Any
) -> None:
    single = await sync_to_async(plan)("single", concurrent_generations=1)
    user = await sync_to_async(user_on)(make_user, single)
    client = await connect(user)
    assert (await send(client))["type"] == "chat.accepted"
    await client.receive()
    assert (await send(client))["code"] == "rate_limited"  # one answer at a time

    await sync_to_async(move)(user, await sync_to_async(pro)())
    after = await send(client)

    assert after["type"] == "chat.accepted"
    await client.close()


async def test_an_edit_of_the_plan_itself_applies_to_its_users_next_message(
    chat_env: Dispatched, make_user: Any
) -> None:
    capped = await sync_to_async(plan)("capped", daily_messages=1)
    client = await connect(await sync_to_async(user_on)(make_user, capped))
    assert (await send(client))["type"] == "chat.accepted"
    await client.receive()
    assert (await send(client))["code"] == "quota_exceeded"

    await sync_to_async(Plan.objects.filter(pk=capped.pk).update)(daily_messages=10)

    assert (await send(client))["type"] == "chat.accepted"
    await client.close()


async def test_a_model_outside_the_plan_is_refused_with_a_clear_error_and_nothing_stored(
    chat_env: Dispatched, make_user: Any
) -> None:
    narrow = await sync_to_async(plan)("narrow", allowed_models=[OTHER_MODEL])
    user = await sync_to_async(user_on)(make_user, narrow)
    client = await connect(user)

    refused = await send(client, model=MODEL)
    await client.settle()

    assert refused["code"] == "forbidden"
    assert refused["message"] == (
        f"The narrow plan does not include the model {MODEL}; it includes {OTHER_MODEL}."
    )
    assert chat_env.tasks == []
    conversations, _ = await sync_to_async(selectors.conversation_list)(owner_id=user.pk)
    assert conversations == []
    await client.close()


async def test_without_a_model_a_plan_that_excludes_the_default_gets_its_own_model(
    chat_env: Dispatched, make_user: Any
) -> None:
    await sync_to_async(LanguageModel.objects.create)(
        name=OTHER_MODEL, display_name="Other", weights="other", queue="inference.other"
    )
    narrow = await sync_to_async(plan)("narrow", allowed_models=[OTHER_MODEL])
    client = await connect(await sync_to_async(user_on)(make_user, narrow))

    accepted = await send(client)

    assert accepted["type"] == "chat.accepted"
    assert chat_env.tasks[0]["queue"] == "inference.other"
    await client.close()


async def test_the_monthly_token_budget_counts_this_months_usage_only(
    chat_env: Dispatched, make_user: Any
) -> None:
    budget = await sync_to_async(plan)("budget", monthly_token_budget=100)
    user = await sync_to_async(user_on)(make_user, budget)
    last_month = timezone.now().replace(day=1) - timedelta(days=1)
    await sync_to_async(UsageRecord.objects.create)(
        generation_id="old", user=user, model=MODEL, prompt_tokens=500, created_at=last_month
    )
    client = await connect(user)
    assert (await send(client))["type"] == "chat.accepted"
    await client.receive()

    await sync_to_async(UsageRecord.objects.create)(
        generation_id="new", user=user, model=MODEL, prompt_tokens=60, completion_tokens=40
    )
    refused = await send(client)

    assert refused["code"] == "quota_exceeded"
    assert "budget of 100 tokens" in refused["message"] and refused["retry_after"] >= 1
    await client.close()


async def test_the_plans_output_cap_and_priority_reach_the_stored_answer_and_the_queue(
    chat_env: Dispatched, make_user: Any
) -> None:
    fast = await sync_to_async(plan)("fast", max_output_tokens=16, priority=8)
    user = await sync_to_async(user_on)(make_user, fast)
    client = await connect(user)

    accepted = await send(client, options={"max_tokens": 1000})

    answer = await sync_to_async(selectors.message_by_generation)(
        generation_id=accepted["generation_id"], owner_id=user.pk
    )
    assert answer["options"]["max_tokens"] == 16
    task = chat_env.tasks[0]
    assert (task["kwargs"]["priority"], task["priority"]) == (8, 1)  # Celery: 0 runs first
    await client.close()


async def test_a_users_own_priority_overrides_the_plans(
    chat_env: Dispatched, make_user: Any
) -> None:
    fast = await sync_to_async(plan)("fast", priority=8)
    client = await connect(
        await sync_to_async(user_on)(make_user, fast, priority=User.Priority.LOW)
    )

    await send(client)

    assert chat_env.tasks[0]["kwargs"]["priority"] == User.Priority.LOW
    await client.close()


async def test_a_conversation_on_a_model_the_plan_drops_is_refused_for_sends_and_regenerates(
    chat_env: Dispatched, make_user: Any
) -> None:
    wide = await sync_to_async(plan)("wide")
    narrow = await sync_to_async(plan)("narrow", allowed_models=[OTHER_MODEL])
    user = await sync_to_async(user_on)(make_user, wide)
    client = await connect(user)
    accepted = await send(client, model=MODEL)
    assert accepted["type"] == "chat.accepted"
    await client.receive()  # generation.queued
    conversation_id = accepted["conversation_id"]
    await sync_to_async(move)(user, narrow)

    follow_up = await send(client, conversation_id=conversation_id)
    await client.send(
        {
            "type": "generation.regenerate",
            "request_id": uuid.uuid4().hex,
            "message_id": accepted["assistant_message_id"],
        }
    )
    regenerated = await client.receive(timeout=30)
    await client.settle()

    assert (follow_up["type"], follow_up["code"]) == ("error", "forbidden")
    assert (regenerated["type"], regenerated["code"]) == ("error", "forbidden")
    assert len(chat_env.tasks) == 1
    conversation = await sync_to_async(selectors.conversation_get)(
        conversation_id=conversation_id, owner_id=user.pk
    )
    assert conversation["message_count"] == 2
    await client.close()
