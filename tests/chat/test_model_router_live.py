"""`model: "auto"` over the real websocket stack in process: the registry, the plans and the
routing policy in real PostgreSQL, the workers' liveness keys and the queues' waiting and
running sets in real Redis, read live per message. No engine runs here: a worker's presence is
the liveness entry a worker writes (`inference.worker.Liveness`), and the Celery hand-off is
recorded (tests/chat/consumer_support.py). The same path on a real stack with real engines:
tests/e2e/test_auto_router_e2e.py."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings

from accounts.models import Plan, User
from chat import model_router, selectors
from chat.api import conversation_json
from chat.generation import names, waiting
from config.health import LIVE_WORKERS_KEY
from inference.models import LanguageModel, Route, RoutingPolicy
from tests.chat.consumer_support import MODEL, QUEUE, Client, Dispatched, connect

pytest_plugins = ["tests.chat.consumer_support"]

GEMMA = "gemma3-270m"
GEMMA_QUEUE = f"inference.{GEMMA}"


@pytest.fixture
def two_models(default_model: Any) -> None:
    """SmolLM2 (the cheaper) and Gemma, both enabled, with the registry's prices."""
    LanguageModel.objects.filter(name=MODEL).update(
        price_prompt_per_1k=Decimal("0.0001"), price_completion_per_1k=Decimal("0.0002")
    )
    LanguageModel.objects.update_or_create(
        name=GEMMA,
        defaults={
            "display_name": "Gemma 3 270M",
            "weights": "gemma-3-270m",
            "context_length": 8192,
            "max_output_tokens": 1024,
            "queue": GEMMA_QUEUE,
            "price_prompt_per_1k": Decimal("0.0002"),
            "price_completion_per_1k": Decimal("0.0004"),
            "enabled": True,
        },
    )
    model_router.forget()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def workers(redis_client: redis.Redis) -> Iterator[Callable[..., None]]:
    """`workers(queue, ...)`: a live worker consuming those queues, as a worker advertises
    itself; all of them removed at the end."""
    hosts: list[str] = []
    # Only this test's workers are live: earlier tests of the run may have left liveness
    # entries in the same Redis database, and the router counts every live worker's room.
    for stale in redis_client.zrange(LIVE_WORKERS_KEY, 0, -1):
        redis_client.delete(f"chat:worker:{stale.decode()}")
    redis_client.delete(LIVE_WORKERS_KEY)

    def live(*queues: str) -> None:
        host = f"test-{uuid.uuid4().hex[:10]}"
        hosts.append(host)
        redis_client.set(
            f"chat:worker:{host}", json.dumps({"queues": list(queues), "pid": 1}), ex=60
        )
        redis_client.zadd(LIVE_WORKERS_KEY, {host: time.time() + 60})

    yield live
    for host in hosts:
        redis_client.delete(f"chat:worker:{host}")
        redis_client.zrem(LIVE_WORKERS_KEY, host)


@pytest.fixture
def load(redis_client: redis.Redis) -> Iterator[Callable[..., None]]:
    """`load(queue, waiting=n, running=m)`: generations of nobody in a queue's sets."""
    added: list[tuple[str, str]] = []
    # The queues hold only this test's generations (earlier tests share the Redis database).
    for queue in (QUEUE, GEMMA_QUEUE):
        redis_client.delete(
            names.waiting_key(queue), names.waiting_since_key(queue), names.running_key(queue)
        )

    def put(queue: str, *, waiting_count: int = 0, running: int = 0) -> list[str]:
        first = len(added)
        for _ in range(waiting_count):
            generation_id = f"load-{uuid.uuid4().hex}"
            waiting.add(queue=queue, generation_id=generation_id, priority=5)
            added.append((queue, generation_id))
        for _ in range(running):
            generation_id = f"load-{uuid.uuid4().hex}"
            waiting.add(queue=queue, generation_id=generation_id, priority=5)
            waiting.start(queue=queue, generation_id=generation_id)
            added.append((queue, generation_id))
        return [generation_id for _, generation_id in added[first:]]

    yield put
    for queue, generation_id in added:
        waiting.remove(queue=queue, generation_id=generation_id)


async def auto_send(client: Client, content: str = "Hello there", **fields: Any) -> dict:
    """A chat.send asking for auto, and its answer (a new conversation's
    `conversation.updated`, which may arrive late, skipped)."""
    frame = await client.chat_send(content, model="auto", **fields)
    while frame["type"] == "conversation.updated":
        frame = await client.receive()
    if frame["type"] == "chat.accepted":
        await client.settle()
    return frame


def answer_model(accepted: dict, owner_id: int) -> str:
    message = selectors.message_get(message_id=accepted["assistant_message_id"], owner_id=owner_id)
    assert message is not None
    return str(message["model"])


async def test_auto_takes_the_cheapest_model_with_a_live_worker_and_records_it(
    chat_env: Dispatched, two_models: None, workers: Any, make_user: Any
) -> None:
    await sync_to_async(workers)(QUEUE, GEMMA_QUEUE)
    user = await sync_to_async(make_user)()
    client = await connect(user)

    accepted = await auto_send(client)

    assert accepted["type"] == "chat.accepted", accepted
    assert chat_env.tasks[-1]["queue"] == QUEUE
    assert await sync_to_async(answer_model)(accepted, user.pk) == MODEL
    conversation = await sync_to_async(selectors.conversation_get)(
        conversation_id=accepted["conversation_id"], owner_id=user.pk
    )
    assert conversation is not None and conversation["model"] == MODEL
    await client.close()


async def test_auto_falls_back_when_the_first_choice_has_no_live_worker(
    chat_env: Dispatched, two_models: None, workers: Any, make_user: Any
) -> None:
    await sync_to_async(workers)(GEMMA_QUEUE)  # nobody serves the cheaper SmolLM2
    user = await sync_to_async(make_user)()
    client = await connect(user)

    accepted = await auto_send(client)

    assert accepted["type"] == "chat.accepted", accepted
    assert chat_env.tasks[-1]["queue"] == GEMMA_QUEUE
    assert await sync_to_async(answer_model)(accepted, user.pk) == GEMMA
    await client.close()


async def test_auto_reads_the_running_count_live_and_falls_back_while_the_first_is_full(
    chat_env: Dispatched,
    two_models: None,
    workers: Any,
    load: Any,
    make_user: Any,
    settings: Any,
) -> None:
    settings.INFERENCE_MAX_NUM_SEQS = 2  # one worker runs 2 at once
    await sync_to_async(workers)(QUEUE, GEMMA_QUEUE)
    user = await sync_to_async(make_user)()
    client = await connect(user)
    running = await sync_to_async(load)(QUEUE, running=2)
    runs = await sync_to_async(waiting.load)(queues=[QUEUE], stale_after=60)

    while_full = await auto_send(client, "first")
    for generation_id in running:  # both end
        await sync_to_async(waiting.remove)(queue=QUEUE, generation_id=generation_id)
    after = await auto_send(client, "second")

    assert runs[QUEUE] == (0, 2)
    assert while_full["type"] == "chat.accepted", while_full
    assert await sync_to_async(answer_model)(while_full, user.pk) == GEMMA
    assert await sync_to_async(answer_model)(after, user.pk) == MODEL
    await client.close()


async def test_auto_answers_busy_only_when_every_allowed_queue_is_full(
    chat_env: Dispatched,
    two_models: None,
    workers: Any,
    load: Any,
    make_user: Any,
    settings: Any,
) -> None:
    settings.CHAT_MAX_QUEUE_DEPTH = 2
    await sync_to_async(workers)(QUEUE, GEMMA_QUEUE)
    user = await sync_to_async(make_user)()
    client = await connect(user)
    await sync_to_async(load)(QUEUE, waiting_count=2)

    one_full = await auto_send(client, "one")
    await sync_to_async(load)(GEMMA_QUEUE, waiting_count=2)
    both_full = await auto_send(client, "two")

    assert await sync_to_async(answer_model)(one_full, user.pk) == GEMMA
    assert both_full["type"] == "error" and both_full["code"] == "busy", both_full
    assert both_full["retry_after"] >= 1
    await client.close()


async def test_auto_never_leaves_the_users_plan(
    chat_env: Dispatched, two_models: None, workers: Any, make_user: Any
) -> None:
    narrow = await sync_to_async(Plan.objects.create)(name="narrow", allowed_models=[MODEL])
    await sync_to_async(workers)(GEMMA_QUEUE)  # only the model outside the plan is served
    user = await sync_to_async(make_user)(plan=narrow)
    client = await connect(user)

    refused = await auto_send(client, "hello")

    assert refused["type"] == "error" and refused["code"] == "busy", refused
    assert not [task for task in chat_env.tasks if task["queue"] == GEMMA_QUEUE]
    await client.close()


async def auto_answered_then_gemma_alone(
    make_user: Any, workers: Any, redis_client: Any
) -> tuple[Any, Client, dict]:
    """A new user's `auto` message answered by SmolLM2 (the only live worker); then SmolLM2's
    worker goes away and Gemma's comes up."""
    await sync_to_async(workers)(QUEUE)
    user = await sync_to_async(make_user)()
    client = await connect(user)
    first = await auto_send(client)
    await sync_to_async(redis_client.delete)(LIVE_WORKERS_KEY)
    await sync_to_async(workers)(GEMMA_QUEUE)
    return user, client, first


async def test_regenerate_with_auto_asks_the_router_again(
    chat_env: Dispatched, two_models: None, workers: Any, make_user: Any, redis_client: Any
) -> None:
    user, client, first = await auto_answered_then_gemma_alone(make_user, workers, redis_client)

    await client.send(
        {
            "type": "generation.regenerate",
            "message_id": first["assistant_message_id"],
            "request_id": uuid.uuid4().hex,
            "model": "auto",
        }
    )
    again = await next_frame(client)

    assert again["type"] == "chat.accepted", again
    assert await sync_to_async(answer_model)(first, user.pk) == MODEL
    assert await sync_to_async(answer_model)(again, user.pk) == GEMMA
    await client.close()


async def next_frame(client: Client) -> dict:
    frame = await client.receive()
    while frame["type"] == "conversation.updated":
        frame = await client.receive()
    return frame


async def send(client: Client, content: str, **fields: Any) -> dict:
    """A chat.send and its answer, as `auto_send` without asking for auto."""
    frame = await client.chat_send(content, **fields)
    while frame["type"] == "conversation.updated":
        frame = await client.receive()
    if frame["type"] == "chat.accepted":
        await client.settle()
    return frame


async def test_a_conversation_started_with_auto_routes_its_next_turns_again(
    chat_env: Dispatched, two_models: None, workers: Any, make_user: Any, redis_client: Any
) -> None:
    user, client, first = await auto_answered_then_gemma_alone(make_user, workers, redis_client)

    second = await send(client, "And then?", conversation_id=first["conversation_id"])
    await client.send(
        {
            "type": "generation.regenerate",
            "message_id": first["assistant_message_id"],
            "request_id": uuid.uuid4().hex,
        }
    )
    regenerated = await next_frame(client)
    conversation = await sync_to_async(selectors.conversation_get)(
        conversation_id=first["conversation_id"], owner_id=user.pk
    )

    assert second["type"] == "chat.accepted", second
    assert regenerated["type"] == "chat.accepted", regenerated
    assert await sync_to_async(answer_model)(first, user.pk) == MODEL
    assert await sync_to_async(answer_model)(second, user.pk) == GEMMA
    assert await sync_to_async(answer_model)(regenerated, user.pk) == GEMMA
    # The conversation remembers the choice beside the model of its first answer, as before.
    assert conversation is not None
    assert (conversation["model"], conversation["model_choice"]) == (MODEL, "auto")
    summary = conversation_json(conversation)
    assert (summary["model"], summary["model_choice"]) == (MODEL, "auto")
    await client.close()


async def test_a_conversation_started_with_a_named_model_keeps_it_without_a_choice(
    chat_env: Dispatched, two_models: None, workers: Any, make_user: Any
) -> None:
    await sync_to_async(workers)(QUEUE, GEMMA_QUEUE)
    user = await sync_to_async(make_user)()
    client = await connect(user)
    first = await send(client, "hello", model=GEMMA)

    second = await send(client, "again", conversation_id=first["conversation_id"])
    conversation = await sync_to_async(selectors.conversation_get)(
        conversation_id=first["conversation_id"], owner_id=user.pk
    )

    assert await sync_to_async(answer_model)(second, user.pk) == GEMMA
    assert conversation is not None and "model_choice" not in conversation
    assert conversation_json(conversation)["model_choice"] == GEMMA
    await client.close()


def by_task_policy() -> None:
    RoutingPolicy(strategy="by_task", fallback="cheapest", min_similarity=0.0).save()
    gemma = LanguageModel.objects.get(name=GEMMA)
    smol = LanguageModel.objects.get(name=MODEL)
    Route.objects.create(
        name="knowledge",
        model=gemma,
        examples="What is the capital of Spain?\nWho invented the light bulb?\n"
        "When did the Roman Empire fall?\nHow many moons does Jupiter have?",
    )
    Route.objects.create(
        name="small-talk",
        model=smol,
        examples="Hi, how are you?\nThanks, you're great!\nGood morning, friend.\n"
        "I'm bored, chat with me.",
    )
    model_router.forget()


async def test_the_by_task_policy_an_admin_edits_routes_each_message(
    chat_env: Dispatched, two_models: None, workers: Any, make_user: Any, settings: Any
) -> None:
    settings.ROUTER_EMBEDDING = "full"  # the static table is built by a command, elsewhere
    await sync_to_async(by_task_policy)()
    await sync_to_async(workers)(QUEUE, GEMMA_QUEUE)
    user = await sync_to_async(make_user)()
    client = await connect(user)

    fact = await auto_send(client, "Who wrote the Odyssey?")
    chat = await auto_send(client, "hey there, how's your day going?")
    # The admin sends factual questions to SmolLM2 from now on.
    await sync_to_async(Route.objects.filter(name="knowledge").update)(
        model=await sync_to_async(LanguageModel.objects.get)(name=MODEL)
    )
    model_router.forget()  # what CONFIG_SECONDS does in a running process
    fact_again = await auto_send(client, "What is the longest river in Asia?")

    assert await sync_to_async(answer_model)(fact, user.pk) == GEMMA
    assert await sync_to_async(answer_model)(chat, user.pk) == MODEL
    assert await sync_to_async(answer_model)(fact_again, user.pk) == MODEL
    await client.close()


async def test_a_named_model_is_unchanged_by_the_router(
    chat_env: Dispatched, two_models: None, workers: Any, make_user: Any
) -> None:
    await sync_to_async(workers)(QUEUE)
    user: User = await sync_to_async(make_user)()
    client = await connect(user)

    named = await client.chat_send("hello", model=GEMMA)  # no worker: queued, as before
    await client.settle()

    assert named["type"] == "chat.accepted", named
    assert await sync_to_async(answer_model)(named, user.pk) == GEMMA
    await client.close()
