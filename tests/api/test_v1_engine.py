"""A streamed chat completion whose client disconnects, against the REAL vLLM engine (CPU,
default model) hosted in this process: the disconnect takes the websocket's stop path, the
request leaves the engine (its running set empties), and the generation ends `stopped`, billed
for what was generated. Django's ASGI handler is driven directly, as Daphne drives it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.asgi import get_asgi_application
from pytest_django import Settings

from api.models import ApiKey
from api.v1 import workers
from chat.generation import admission
from chat.store import CONVERSATIONS, MESSAGES, get_db
from inference.engine import host
from inference.models import UsageRecord
from inference.streaming import generation_run
from tests.api.v1_support import completion_scope
from tests.chat.consumer_support import engine_default_model
from tests.inference.conftest import model_root, prepared_model_dir, real_engine  # noqa: F401
from tests.inference.test_lifecycle_e2e import drained, in_thread, unfinished

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def engine_worker(
    settings: Settings,
    model_root: Path,  # noqa: F811
    real_engine: Any,  # noqa: F811
    chat_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> list[threading.Thread]:
    """Enqueued generations run on the in-process engine, as a worker's task runs them, on
    the model as `real_engine` hosts it (else the test would watch an idle engine)."""
    from moderation import pipeline
    from moderation.types import Direction

    engine_default_model()

    settings.INFERENCE_MODEL_DIR = model_root
    settings.INFERENCE_FLUSH_INTERVAL_SECONDS = 0.03
    settings.INFERENCE_IGNORE_EOS = True  # exactly max_tokens unless stopped
    pipeline.run("warm up", direction=Direction.OUTPUT)
    monkeypatch.setattr(workers, "queue_served", lambda queue: True)
    runs: list[threading.Thread] = []

    def send_task(name: str, **options: Any) -> None:
        kwargs = options["kwargs"]
        run = threading.Thread(target=host.run, args=(generation_run(**kwargs), 240))
        run.start()
        runs.append(run)

    monkeypatch.setattr(admission.celery_app, "send_task", send_task)
    return runs


async def test_a_client_that_leaves_a_stream_stops_the_engine_request(
    engine_worker: list[threading.Thread],
    real_engine: Any,  # noqa: F811
    make_key: Callable[..., tuple[str, ApiKey]],
) -> None:
    raw, key = await in_thread(make_key)
    body = {
        "model": "smollm2-135m",
        "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
        "max_tokens": 256,
        "stream": True,
    }
    scope = completion_scope(raw)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "http.request", "body": json.dumps(body).encode()})
    application = asyncio.ensure_future(get_asgi_application()(scope, inbox.get, outbox.put))

    start = await asyncio.wait_for(outbox.get(), 60)
    contents = []
    async with asyncio.timeout(120):
        while len(contents) < 2:
            message = await outbox.get()
            for line in message.get("body", b"").decode().split("\n\n"):
                if line.startswith("data: {"):
                    delta = json.loads(line[6:])["choices"][0]["delta"]
                    if delta.get("content"):
                        contents.append(delta["content"])
    running_before = await asyncio.wrap_future(
        asyncio.run_coroutine_threadsafe(unfinished(real_engine), host.loop)
    )
    left_at = time.monotonic()
    inbox.put_nowait({"type": "http.disconnect"})  # the client goes away mid-answer
    await asyncio.wait_for(application, 30)
    for run in engine_worker:
        await asyncio.to_thread(run.join, 60)
    ended_after = time.monotonic() - left_at
    after, freed_after = await drained(real_engine)
    await asyncio.sleep(0.5)  # the detached cleanup purges the exchange

    generation_id = await in_thread(
        lambda: UsageRecord.objects.filter(user_id=key.user_id).values_list(
            "generation_id", flat=True
        )[0]
    )
    record = await in_thread(UsageRecord.objects.get, generation_id=generation_id)
    print(f"disconnect -> generation ended: {ended_after * 1000:.0f} ms; engine empty after")
    assert start["status"] == 200
    assert running_before == (1, True)  # the request was running in the engine
    assert after == (0, False)  # and the engine holds nothing afterwards
    assert record.finish_reason == "stopped"
    assert 0 < record.completion_tokens < 256
    db = get_db()
    assert await in_thread(lambda: db[MESSAGES].count_documents({"owner_id": key.user_id})) == 0
    assert (
        await in_thread(lambda: db[CONVERSATIONS].count_documents({"owner_id": key.user_id})) == 0
    )
    assert freed_after < 2000


async def test_a_client_that_leaves_a_plain_completion_stops_the_engine_request(
    engine_worker: list[threading.Thread],
    real_engine: Any,  # noqa: F811
    make_key: Callable[..., tuple[str, ApiKey]],
) -> None:
    """The same for a completion that is not streamed: the client waits for the whole answer
    and leaves before it comes. Driven through `config.asgi.application`, as Daphne serves it."""
    from config.asgi import application

    raw, key = await in_thread(make_key)
    body = {
        "model": "smollm2-135m",
        "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
        "max_tokens": 256,
    }
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[dict[str, Any]] = []
    inbox.put_nowait({"type": "http.request", "body": json.dumps(body).encode()})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    served = asyncio.ensure_future(application(completion_scope(raw), inbox.get, send))
    running_before = (0, False)
    async with asyncio.timeout(120):
        while running_before != (1, True):  # the engine is generating the answer
            await asyncio.sleep(0.05)
            running_before = await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(unfinished(real_engine), host.loop)
            )
    await asyncio.sleep(1.0)  # some tokens of the 256 (about 30 a second here)
    left_at = time.monotonic()
    inbox.put_nowait({"type": "http.disconnect"})  # the client gives up waiting
    await asyncio.wait_for(served, 30)
    for run in engine_worker:
        await asyncio.to_thread(run.join, 60)
    ended_after = time.monotonic() - left_at
    after, freed_after = await drained(real_engine)
    await asyncio.sleep(0.5)  # the detached cleanup purges the exchange

    record = await in_thread(UsageRecord.objects.get, user_id=key.user_id)
    print(f"plain: disconnect -> generation ended: {ended_after * 1000:.0f} ms; engine empty")
    assert sent == []  # no answer was sent: nobody was there to read it
    assert after == (0, False)  # the engine holds nothing afterwards
    assert record.finish_reason == "stopped"
    assert 0 < record.completion_tokens < 256
    assert (record.source, record.api_key_id) == ("api", key.pk)
    db = get_db()
    assert await in_thread(lambda: db[MESSAGES].count_documents({"owner_id": key.user_id})) == 0
    assert freed_after < 2000
