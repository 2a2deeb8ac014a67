"""A stand-in worker for the in-process `/v1/` tests: it answers each enqueued generation the
way the real one ends it (`inference.services.generation_end`: the store's final write, the
closing message, the usage record), after publishing its deltas to the generation's group."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import redis
from channels.layers import get_channel_layer
from django.conf import settings

from chat import events, selectors
from chat.events import generation_group
from chat.generation import deltas
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
        if self.error_message is not None:
            ending.state, ending.finish_reason = "failed", None
            ending.error_code, ending.error_message = "engine_error", self.error_message
        if self.state == "moderated":
            ending.categories, ending.moderation_message = ["violence"], "Cut by moderation."
        await generation_end(ending, layer=layer)


def stored_model(generation_id: str, owner_id: int) -> str:
    document = selectors.message_by_generation(generation_id=generation_id, owner_id=owner_id)
    return str((document or {}).get("model") or "smollm2-135m")


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
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        counts = client.pubsub_numsub(f"{prefix}__group__{generation_group(generation_id)}")
        return int(counts[0][1])
    finally:
        client.close()
