"""A stand-in worker for the in-process `/v1/` tests: it answers each enqueued generation the
way the real one ends it (`inference.services.generation_end`: the store's final write, the
closing message, the usage record), after publishing its deltas to the generation's group."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.test import AsyncClient

from api.v1 import completions, workers
from chat import events, selectors
from chat.events import generation_group
from chat.generation import admission, deltas, stop
from chat.generation.record import Ending
from chat.protocol import GenerationDelta
from inference.services import generation_end


@dataclass
class FakeWorker:
    loop: asyncio.AbstractEventLoop
    pieces: list[str] = field(default_factory=lambda: ["Hello", ", ", "world."])
    finish_reason: str = "stop"
    state: str = "complete"
    hold: bool = False  # never answer (a generation that keeps its slot)
    error_message: str | None = None  # end with generation.error (state "failed")
    cached: bool = False  # end as the response cache's answer (the worker's `CacheLookup.bill`)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    answered: list[asyncio.Future[Any]] = field(default_factory=list)
    # The consumer tests' record of hand-offs (`tests.chat.consumer_support.dispatched`), whose
    # teardown takes unanswered generations out of the shared waiting queue.
    record: Any = None

    def send_task(self, name: str, **options: Any) -> None:
        """Celery's send_task, called in admission's thread."""
        self.tasks.append(options)
        if self.record is not None:
            self.record.tasks.append({"name": name, **options})
        if not self.hold:
            kwargs = options["kwargs"]
            future = asyncio.run_coroutine_threadsafe(
                self.answer(kwargs["generation_id"], kwargs["owner_id"]), self.loop
            )
            self.answered.append(asyncio.wrap_future(future, loop=self.loop))

    async def answer(self, generation_id: str, owner_id: int) -> None:
        layer = get_channel_layer()
        await asyncio.sleep(0.05)
        offsets, length = [], 0
        for seq, piece in enumerate(self.pieces, start=1):
            await asyncio.to_thread(deltas.record, generation_id=generation_id, seq=seq, text=piece)
            await events.to_generation(
                generation_id,
                GenerationDelta(generation_id=generation_id, seq=seq, text=piece),
                layer=layer,
            )
            length += len(piece)
            offsets.append(length)
        ending = Ending(
            generation_id=generation_id,
            owner_id=owner_id,
            state=self.state,
            text="".join(self.pieces),
            seq=len(self.pieces),
            finish_reason=self.finish_reason,
            prompt_tokens=7,
            completion_tokens=len(self.pieces),
            seq_offsets=offsets,
            # The stored answer's model, as the real worker reads it (the router's choice
            # for "auto").
            model_name=await asyncio.to_thread(stored_model, generation_id, owner_id),
        )
        ending.cached = self.cached
        ending.model_version = await asyncio.to_thread(stored_version, generation_id, owner_id)
        if self.error_message is not None:
            ending.state, ending.finish_reason = "failed", None
            ending.error_code, ending.error_message = "engine_error", self.error_message
        if self.state == "moderated":
            ending.categories, ending.moderation_message = ["violence"], "Cut by moderation."
        await generation_end(ending, layer=layer)


def stored_model(generation_id: str, owner_id: int) -> str:
    document = selectors.message_by_generation(generation_id=generation_id, owner_id=owner_id)
    return str((document or {}).get("model") or "smollm2-135m")


def stored_version(generation_id: str, owner_id: int) -> str:
    """The label of the version admission chose for it ("": the model has none)."""
    document = selectors.message_by_generation(generation_id=generation_id, owner_id=owner_id)
    return str((document or {}).get("model_version") or "")


def completion_scope(raw_key: str) -> dict[str, Any]:
    """The ASGI scope of `POST /v1/chat/completions` with `raw_key`, as Daphne builds it, for
    the tests that drive Django's ASGI handler directly (to disconnect at a chosen moment)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {raw_key}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def group_subscribers(generation_id: str) -> int:
    """Redis connections subscribed to the generation's group (channels_redis' pub/sub)."""
    layer: dict[str, Any] = settings.CHANNEL_LAYERS["default"]
    prefix = layer["CONFIG"]["prefix"]
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        counts = client.pubsub_numsub(f"{prefix}__group__{generation_group(generation_id)}")
        return int(counts[0][1])
    finally:
        client.close()


# --- the disconnect tests: a client that leaves a completion while a generation is held -------


@dataclass
class HeldCompletion:
    """A user's key, and a stand-in worker that holds every generation the key starts (see
    `holding_worker`); `send` records what the application sends into `sent`."""

    raw_key: str
    worker: FakeWorker
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def generation_id(self) -> str:
        return str(self.worker.tasks[0]["kwargs"]["generation_id"])


def holding_worker(*, chat_env: Any, monkeypatch: pytest.MonkeyPatch) -> FakeWorker:
    """A stand-in worker that receives every generation and never answers it (so it stays
    running until stopped), with every model's queue served, and a request whose client has
    gone waiting only half a second for its generation to end."""
    worker = FakeWorker(loop=asyncio.get_running_loop(), hold=True, record=chat_env)
    monkeypatch.setattr(admission.celery_app, "send_task", worker.send_task)
    monkeypatch.setattr(workers, "queue_served", lambda queue: True)
    monkeypatch.setattr(completions, "ABANDONED_WAIT_SECONDS", 0.5)
    return worker


def completion_request(*, stream: bool) -> asyncio.Queue[dict[str, Any]]:
    """The ASGI receive queue of a one-message chat completion, its body already in it; put
    `{"type": "http.disconnect"}` in it to have the client leave."""
    body = {
        "model": "smollm2-135m",
        "messages": [{"role": "user", "content": "Say hello."}],
        "stream": stream,
    }
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "http.request", "body": json.dumps(body).encode()})
    return inbox


async def stopped_and_released(generation_id: str) -> None:
    """Wait (10 s at most) until the generation is asked to stop, the websocket's stop path,
    and no request is subscribed to its group any more."""
    async with asyncio.timeout(10):
        while not await sync_to_async(stop.requested)(generation_id=generation_id):
            await asyncio.sleep(0.05)
        while await sync_to_async(group_subscribers)(generation_id):
            await asyncio.sleep(0.05)


async def post(raw: str, body: Any) -> Any:
    """A `/v1/chat/completions` request with the API key `raw`, through Django's test client."""
    return await AsyncClient().post(
        "/v1/chat/completions",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
