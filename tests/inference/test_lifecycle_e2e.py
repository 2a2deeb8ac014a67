"""Stop and output moderation against the REAL vLLM engine (CPU, default model), the real
Redis (stop flag, channel layer), the store and PostgreSQL. Generations are short (at most 32
tokens): the machine is shared."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from pytest_django import Settings

from chat import selectors, services
from chat.generation import stop
from chat.protocol import server_message_adapter
from inference.engine import host
from inference.models import UsageRecord
from inference.streaming import generation_run
from tests.chat.consumer_support import engine_default_model

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def engine_settings(
    settings: Settings, model_root: Path, real_engine: Any, transactional_db: None
) -> Settings:
    from moderation import pipeline
    from moderation.types import Direction

    # The registry's default model as `real_engine` hosts it, whether or not a transactional
    # test has flushed the migration's seed (its version `v1` would start a second engine).
    engine_default_model()
    settings.INFERENCE_MODEL_DIR = model_root
    settings.INFERENCE_FLUSH_INTERVAL_SECONDS = 0.03
    # Load the output checks' models now: the first check in a process takes seconds, and
    # the short answers here would be over before their first window was released.
    pipeline.run("warm up", direction=Direction.OUTPUT)
    return settings


def arrange(*, content: str, options: dict[str, Any], system_prompt: str | None = None) -> Any:
    user = get_user_model().objects.create_user(f"e{uuid.uuid4().hex[:8]}@example.org", "pw")
    conversation = services.conversation_create(
        owner_id=user.pk, title="e2e", model="smollm2-135m", system_prompt=system_prompt
    )
    question = services.message_create_user(
        conversation_id=conversation["id"],
        owner_id=user.pk,
        parent_id=None,
        content=content,
        request_id=uuid.uuid4().hex,
    )
    answer = services.message_create_assistant(
        conversation_id=conversation["id"],
        owner_id=user.pk,
        parent_id=question["id"],
        model="smollm2-135m",
        options=options,
    )
    return user.pk, answer["generation_id"]


async def in_thread(function: Any, *args: Any, **kwargs: Any) -> Any:
    """ORM work in a thread that closes its connection (else it outlives the test database)."""
    from django.db import connection

    def call() -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    return await asyncio.to_thread(call)


async def unfinished(engine: Any) -> tuple[int, bool]:
    """Requests the engine still holds: in this process (output processor) and in the
    EngineCore process (its scheduler's waiting and running queues)."""
    has_work = await engine.engine_core.call_utility_async("has_work")
    return engine.get_num_unfinished_requests(), bool(has_work)


async def drained(engine: Any, timeout: float = 2.0) -> tuple[tuple[int, bool], float]:
    """What the engine holds once the abort has reached the EngineCore process (it travels
    asynchronously), and how long that took in ms."""
    started = time.monotonic()
    while True:
        held = await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(unfinished(engine), host.loop)
        )
        if held == (0, False) or time.monotonic() - started > timeout:
            return held, (time.monotonic() - started) * 1000
        await asyncio.sleep(0.02)


class StopAfterFirstDelta:
    """The worker's channel layer, which asks for a stop (through Redis, as the web tier does)
    right after publishing delta 1, and notes what the engine held at that moment."""

    def __init__(self, layer: Any, engine: Any) -> None:
        self.layer, self.engine = layer, engine
        self.running_at_stop: tuple[int, bool] | None = None
        self.stopped_at = 0.0

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self.layer.group_send(group, message)
        if message["type"] == "generation.delta" and message["seq"] == 1:
            self.running_at_stop = await unfinished(self.engine)
            self.stopped_at = time.monotonic()
            await asyncio.to_thread(stop.signal, generation_id=message["generation_id"])


async def test_stop_mid_stream_aborts_the_request_and_keeps_the_text_seen(
    engine_settings: Settings, real_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inference import streaming

    engine_settings.INFERENCE_IGNORE_EOS = True  # exactly max_tokens unless stopped
    owner_id, generation_id = await in_thread(
        # A prompt that keeps the model writing words (a count can end in "100." and then
        # invisible end-of-turn tokens, all of it before the first delta).
        arrange,
        content="Write a long story about a lighthouse keeper and a storm.",
        options={"max_tokens": 64},
    )
    layer = get_channel_layer()
    worker_layer = StopAfterFirstDelta(layer, real_engine)
    monkeypatch.setattr(streaming, "get_channel_layer", lambda: worker_layer)
    channel = await layer.new_channel()
    await layer.group_add(f"gen.{generation_id}", channel)
    runner = asyncio.ensure_future(
        asyncio.to_thread(
            host.run, generation_run(generation_id=generation_id, owner_id=owner_id), 240
        )
    )
    events: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(240):
            while not events or events[-1]["type"] not in {"generation.done", "generation.error"}:
                events.append(await layer.receive(channel))
        await runner
    finally:
        await layer.group_discard(f"gen.{generation_id}", channel)
    stop_latency = time.monotonic() - worker_layer.stopped_at
    after, freed_after = await drained(real_engine)

    for event in events:
        server_message_adapter.validate_python(event)
    done = events[-1]
    deltas = [e for e in events if e["type"] == "generation.delta"]
    print(
        f"stop -> generation.done: {stop_latency * 1000:.0f} ms; "
        f"engine empty {freed_after:.0f} ms later"
    )
    assert worker_layer.running_at_stop == (1, True)  # running in the engine when stopped
    assert after == (0, False)  # and nothing is left there afterwards
    assert done["type"] == "generation.done" and done["finish_reason"] == "stopped"
    assert stop_latency < 1.0
    assert done["text"] == "".join(d["text"] for d in deltas)
    assert 0 < done["usage"]["completion_tokens"] < 32  # only what was generated
    stored = await in_thread(
        selectors.message_by_generation, generation_id=generation_id, owner_id=owner_id
    )
    assert stored["state"] == "stopped" and stored["content"] == done["text"]
    record = await in_thread(UsageRecord.objects.get, generation_id=generation_id)
    assert record.finish_reason == "stopped"
    assert record.completion_tokens == done["usage"]["completion_tokens"]


async def test_a_forced_output_violation_is_caught_before_release(
    engine_settings: Settings, real_engine: Any
) -> None:
    from moderation.services import rule_create

    word = "banana"
    await in_thread(
        rule_create,
        pattern=word,
        categories=["test"],
        action="block",
        direction="output",
        note="e2e: forced output violation",
    )
    await asyncio.sleep(1.5)  # rule edits reach running processes within the refresh period
    owner_id, generation_id = await in_thread(
        arrange,
        content=f'Repeat exactly: "I like {word} bread. I like {word} cake."',
        options={"max_tokens": 32, "temperature": 0.0},
        system_prompt="You repeat what the user asks you to repeat, word for word.",
    )
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(f"gen.{generation_id}", channel)
    runner = asyncio.ensure_future(
        asyncio.to_thread(
            host.run, generation_run(generation_id=generation_id, owner_id=owner_id), 240
        )
    )
    events: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(240):
            while not events or events[-1]["type"] not in {"generation.done", "generation.error"}:
                events.append(await layer.receive(channel))
        await runner
    finally:
        await layer.group_discard(f"gen.{generation_id}", channel)

    kinds = [e["type"] for e in events]
    released = "".join(e["text"] for e in events if e["type"] == "generation.delta")
    assert kinds[-2:] == ["moderation.blocked", "generation.done"], events
    blocked, done = events[-2:]
    assert blocked["categories"] == ["test"] and blocked["message"]
    assert done["finish_reason"] == "moderated"
    assert word not in released.lower() and done["text"] == released
    stored = await asyncio.to_thread(
        selectors.message_by_generation, generation_id=generation_id, owner_id=owner_id
    )
    assert stored["state"] == "moderated" and stored["content"] == released
    assert stored["moderation"]["categories"] == ["test"]
    record = await in_thread(UsageRecord.objects.get, generation_id=generation_id)
    assert record.finish_reason == "moderated"
    assert (await drained(real_engine))[0] == (0, False)
