"""`model: "auto"` on the OpenAI-compatible API, in process: the router chooses among the key
owner's models by the workers' liveness keys in real Redis, the response and the usage record
name the model it chose, and with no live worker at all the answer is OpenAI's 503. A stand-in
worker answers (tests/api/v1_support.py); the official client on a real stack:
tests/e2e/test_auto_router_e2e.py."""

from __future__ import annotations

import asyncio
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

from api.models import ApiKey
from chat import model_router
from chat.generation import admission
from config.health import LIVE_WORKERS_KEY
from inference.models import LanguageModel, UsageRecord
from tests.api.v1_support import FakeWorker, post

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "smollm2-135m"
GEMMA = "gemma3-270m"
AUTO_HELLO = {"model": "auto", "messages": [{"role": "user", "content": "Say hello."}]}


@pytest.fixture
def gemma(default_model: Any) -> None:
    LanguageModel.objects.filter(name=MODEL).update(price_prompt_per_1k=Decimal("0.0001"))
    LanguageModel.objects.update_or_create(
        name=GEMMA,
        defaults={
            "display_name": "Gemma",
            "weights": "gemma-3-270m",
            "queue": f"inference.{GEMMA}",
            "price_prompt_per_1k": Decimal("0.0002"),
            "enabled": True,
        },
    )
    model_router.forget()


@pytest.fixture
def live() -> Iterator[Callable[..., None]]:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    hosts: list[str] = []

    def serve(*models: str) -> None:
        host = f"api-test-{uuid.uuid4().hex[:8]}"
        hosts.append(host)
        queues = [f"inference.{name}" for name in models]
        client.set(f"chat:worker:{host}", json.dumps({"queues": queues}), ex=60)
        client.zadd(LIVE_WORKERS_KEY, {host: time.time() + 60})

    yield serve
    for host in hosts:
        client.delete(f"chat:worker:{host}")
        client.zrem(LIVE_WORKERS_KEY, host)
    client.close()


@pytest.fixture
async def worker(chat_env: Any, monkeypatch: pytest.MonkeyPatch) -> FakeWorker:
    fake = FakeWorker(loop=asyncio.get_running_loop(), record=chat_env)
    monkeypatch.setattr(admission.celery_app, "send_task", fake.send_task)
    return fake


@pytest.mark.parametrize(("served", "expected"), [((MODEL, GEMMA), MODEL), ((GEMMA,), GEMMA)])
async def test_auto_answers_with_the_model_the_router_chose_and_bills_it(
    worker: FakeWorker,
    gemma: None,
    live: Any,
    make_key: Callable[..., tuple[str, ApiKey]],
    served: tuple[str, ...],
    expected: str,
) -> None:
    await sync_to_async(live)(*served)
    raw, _ = await sync_to_async(make_key)()

    response = await post(raw, AUTO_HELLO)
    streamed = await post(raw, {**AUTO_HELLO, "stream": True})
    chunks = [
        json.loads(line[len("data: ") :])
        async for part in streamed.streaming_content
        for line in part.decode().splitlines()
        if line.startswith("data: {")
    ]
    await asyncio.gather(*worker.answered)
    await asyncio.sleep(0.05)

    assert response.status_code == 200, response.content
    assert response.json()["model"] == expected
    assert chunks and {chunk["model"] for chunk in chunks} == {expected}
    generation_ids = [task["kwargs"]["generation_id"] for task in worker.tasks]
    billed = await sync_to_async(
        lambda: list(
            UsageRecord.objects.filter(generation_id__in=generation_ids).values_list(
                "model", flat=True
            )
        )
    )()
    assert billed == [expected, expected]
    assert {task["queue"] for task in worker.tasks} == {f"inference.{expected}"}


async def test_auto_with_no_live_worker_is_503(
    worker: FakeWorker, gemma: None, make_key: Callable[..., tuple[str, ApiKey]]
) -> None:
    raw, _ = await sync_to_async(make_key)()

    response = await post(raw, AUTO_HELLO)

    assert response.status_code == 503, response.content
    assert "No model is being served" in response.json()["error"]["message"]
    assert worker.tasks == []
