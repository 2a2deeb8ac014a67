"""A chat completion that is NOT streamed, whose client disconnects while the answer is being
generated: nothing will read the answer, so the generation must be stopped (the websocket's
stop path, which aborts the request in the engine) and the request's subscription to the
generation's group released, as for a streamed one. The application Daphne serves
(`config.asgi.application`) is driven directly; a stand-in worker holds the generation."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from api.models import ApiKey
from api.v1 import completions, workers
from chat.generation import admission, stop
from tests.api.v1_support import FakeWorker, completion_scope, group_subscribers

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_client_that_leaves_a_plain_completion_stops_its_generation(
    chat_env: Any,
    make_key: Callable[..., tuple[str, ApiKey]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from config.asgi import application

    worker = FakeWorker(loop=asyncio.get_running_loop(), hold=True, record=chat_env)
    monkeypatch.setattr(admission.celery_app, "send_task", worker.send_task)
    monkeypatch.setattr(workers, "queue_served", lambda queue: True)
    monkeypatch.setattr(completions, "ABANDONED_WAIT_SECONDS", 0.5)
    raw, _ = await sync_to_async(make_key)()
    body = {"model": "smollm2-135m", "messages": [{"role": "user", "content": "Say hello."}]}
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "http.request", "body": json.dumps(body).encode()})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    served = asyncio.ensure_future(application(completion_scope(raw), inbox.get, send))
    async with asyncio.timeout(30):
        while not worker.tasks:  # admitted and handed to the (holding) worker
            await asyncio.sleep(0.02)
    generation_id = worker.tasks[0]["kwargs"]["generation_id"]
    assert await sync_to_async(group_subscribers)(generation_id) == 1
    assert not await sync_to_async(stop.requested)(generation_id=generation_id)

    inbox.put_nowait({"type": "http.disconnect"})  # the client goes away while it waits
    await asyncio.wait_for(served, 10)

    async with asyncio.timeout(10):
        while not await sync_to_async(stop.requested)(generation_id=generation_id):
            await asyncio.sleep(0.05)
        while await sync_to_async(group_subscribers)(generation_id):
            await asyncio.sleep(0.05)
    assert not any(message["type"] == "http.response.body" for message in sent)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_a_client_that_leaves_during_admission_stops_the_generation_admitted_after(
    stream: bool,
    chat_env: Any,
    make_key: Callable[..., tuple[str, ApiKey]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Admission runs on its own thread, which a disconnect cannot interrupt: a request whose
    client left while it waited there (behind a burst, say) is still admitted and enqueued
    afterwards. Nothing would read that answer, so it must be stopped once it exists."""
    from config.asgi import application

    worker = FakeWorker(loop=asyncio.get_running_loop(), hold=True, record=chat_env)
    monkeypatch.setattr(admission.celery_app, "send_task", worker.send_task)
    monkeypatch.setattr(workers, "queue_served", lambda queue: True)
    monkeypatch.setattr(completions, "ABANDONED_WAIT_SECONDS", 0.5)
    entered, release = threading.Event(), threading.Event()
    admit = completions._admitted

    def slow_admission(**arguments: Any) -> Any:
        entered.set()
        release.wait(30)
        return admit(**arguments)

    monkeypatch.setattr(completions, "_admitted", slow_admission)
    raw, _ = await sync_to_async(make_key)()
    body = {
        "model": "smollm2-135m",
        "messages": [{"role": "user", "content": "Say hello."}],
        "stream": stream,
    }
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "http.request", "body": json.dumps(body).encode()})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    served = asyncio.ensure_future(application(completion_scope(raw), inbox.get, send))
    assert await asyncio.to_thread(entered.wait, 30)
    inbox.put_nowait({"type": "http.disconnect"})  # gone while its request is being admitted
    await asyncio.wait_for(served, 10)
    release.set()  # admission goes on, and enqueues the generation

    async with asyncio.timeout(10):
        while not worker.tasks:
            await asyncio.sleep(0.02)
    generation_id = worker.tasks[0]["kwargs"]["generation_id"]
    async with asyncio.timeout(10):
        while not await sync_to_async(stop.requested)(generation_id=generation_id):
            await asyncio.sleep(0.05)
        while await sync_to_async(group_subscribers)(generation_id):
            await asyncio.sleep(0.05)
    assert sent == []  # the view never answered: the client was gone
