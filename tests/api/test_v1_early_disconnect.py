"""A streamed chat completion whose client leaves while the response's headers go out, before
the first chunk: Django never begins the body, so only the response's `close()` can clean up.
The generation must be stopped (the websocket's stop path) and the request's subscription to
the generation's group released, as for a client that leaves mid-stream. Django's ASGI
handler is driven directly, as Daphne drives it; a stand-in worker holds the generation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.asgi import get_asgi_application

from api.models import ApiKey
from api.v1 import completions, workers
from chat.generation import admission, stop
from tests.api.v1_support import FakeWorker, completion_scope, group_subscribers

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_client_that_leaves_before_the_first_chunk_stops_its_generation(
    chat_env: Any,
    make_key: Callable[..., tuple[str, ApiKey]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = FakeWorker(loop=asyncio.get_running_loop(), hold=True, record=chat_env)
    monkeypatch.setattr(admission.celery_app, "send_task", worker.send_task)
    monkeypatch.setattr(workers, "queue_served", lambda queue: True)
    monkeypatch.setattr(completions, "ABANDONED_WAIT_SECONDS", 0.5)
    raw, _ = await sync_to_async(make_key)()
    body = {
        "model": "smollm2-135m",
        "messages": [{"role": "user", "content": "Say hello."}],
        "stream": True,
    }
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "http.request", "body": json.dumps(body).encode()})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.start":
            inbox.put_nowait({"type": "http.disconnect"})  # gone while the headers go out
            await asyncio.Event().wait()  # the handler cancels this send

    await asyncio.wait_for(get_asgi_application()(completion_scope(raw), inbox.get, send), 30)

    assert [message["type"] for message in sent] == ["http.response.start"]
    assert sent[0]["status"] == 200
    generation_id = worker.tasks[0]["kwargs"]["generation_id"]
    async with asyncio.timeout(10):
        while not await sync_to_async(stop.requested)(generation_id=generation_id):
            await asyncio.sleep(0.05)
        while await sync_to_async(group_subscribers)(generation_id):
            await asyncio.sleep(0.05)
