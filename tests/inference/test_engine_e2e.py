"""The stream against the REAL vLLM engine (CPU) with the default model and the real Redis
channel layer. The engine starts once per session and is shut down at the end, leaving no
`VLLM::` process behind."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from channels.layers import get_channel_layer
from pytest_django import Settings

from chat.protocol import server_message_adapter
from inference.engine import host
from inference.streaming import generation_run
from tests.chat.consumer_support import engine_default_model
from tests.inference.fakes import FakeStore

pytestmark = [
    pytest.mark.e2e,
    # Transactional: the generation reads the model row from the engine's thread, on its own
    # connection, which does not see a row created inside the test's open transaction.
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("billing"),
]


@pytest.fixture
def engine_settings(
    settings: Settings, model_root: Path, real_engine: Any, transactional_db: None
) -> Settings:
    # The registry's row, whether or not a transactional test has flushed the seed before
    # (this module runs after the end-to-end stacks: tests/conftest.py).
    engine_default_model()
    settings.INFERENCE_MODEL_DIR = model_root
    settings.INFERENCE_FLUSH_INTERVAL_SECONDS = 0.03
    return settings


async def collect(layer: Any, channel: str, timeout: float = 240.0) -> list[dict[str, Any]]:
    """Every event a subscriber of the generation's group receives, up to the final one."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            event = await layer.receive(channel)
            events.append(event)
            if event["type"] in {"generation.done", "generation.error"}:
                return events


async def stream_through_the_engine(generation_id: str, run: Any) -> list[dict[str, Any]]:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(f"gen.{generation_id}", channel)
    try:
        listener = asyncio.ensure_future(collect(layer, channel))
        await asyncio.to_thread(run)
        return await listener
    finally:
        await layer.group_discard(f"gen.{generation_id}", channel)


def assert_consistent_stream(events: list[dict[str, Any]]) -> dict[str, Any]:
    for event in events:
        server_message_adapter.validate_python(event)
    # The worker first tells the subscribers that the generation left the queue.
    assert events[0]["type"] == "generation.queued" and events[0]["position"] == 0
    *streamed, done = events[1:]
    assert done["type"] == "generation.done", done
    # Between deltas, a quiet stream says it is alive, naming the last seq published so far.
    deltas = [e for e in streamed if e["type"] == "generation.delta"]
    published = 0
    for event in streamed:
        if event["type"] == "generation.progress":
            assert event["seq"] == published
        else:
            assert event["type"] == "generation.delta", event
            published = event["seq"]
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert "".join(d["text"] for d in deltas) == done["text"]
    assert done["text"].strip()
    assert done["usage"]["prompt_tokens"] > 10
    assert done["usage"]["completion_tokens"] > 0
    return done


async def test_a_real_generation_streams_deltas_that_add_up_to_the_final_text(
    engine_settings: Settings, store: FakeStore
) -> None:
    generation_id = uuid.uuid4().hex
    store.conversations["c1"] = {"id": "c1", "system_prompt": "Answer in one sentence."}
    store.paths["u1"] = [
        {"id": "u1", "role": "user", "content": "What is the capital of France?", "parent_id": None}
    ]
    store.messages[generation_id] = {
        "id": "a1",
        "owner_id": 5,
        "state": "queued",
        "model": "smollm2-135m",
        "conversation_id": "c1",
        "parent_id": "u1",
        "options": {"max_tokens": 48},
    }

    def run() -> None:
        host.run(generation_run(generation_id=generation_id, owner_id=5), timeout=240)

    events = await stream_through_the_engine(generation_id, run)

    done = assert_consistent_stream(events)
    (finish,) = store.finishes
    assert finish["state"] == "complete"
    assert finish["text"] == done["text"]
    assert finish["usage"] == done["usage"]
    assert done["usage"]["completion_tokens"] <= 48


async def test_the_task_answers_a_conversation_stored_in_the_real_store(
    engine_settings: Settings,
) -> None:
    services = pytest.importorskip("chat.services")
    selectors = pytest.importorskip("chat.selectors")
    from inference.tasks import generate

    owner_id = 900_000 + uuid.uuid4().int % 100_000

    def arrange() -> dict[str, Any]:
        conversation = services.conversation_create(
            owner_id=owner_id, title="Capitals", model="smollm2-135m", system_prompt=None
        )
        user = services.message_create_user(
            conversation_id=conversation["id"],
            owner_id=owner_id,
            parent_id=None,
            content="Name the capital of Italy in one word.",
            request_id=uuid.uuid4().hex,
        )
        return services.message_create_assistant(
            conversation_id=conversation["id"],
            owner_id=owner_id,
            parent_id=user["id"],
            model="smollm2-135m",
        )

    assistant = await asyncio.to_thread(arrange)
    generation_id = assistant["generation_id"]

    events = await stream_through_the_engine(
        generation_id, lambda: generate.run(generation_id=generation_id, owner_id=owner_id)
    )

    done = assert_consistent_stream(events)
    stored = await asyncio.to_thread(
        selectors.message_by_generation, generation_id=generation_id, owner_id=owner_id
    )
    assert stored["state"] == "complete"
    assert stored["content"] == done["text"]
    assert stored["usage"]["completion_tokens"] == done["usage"]["completion_tokens"]


def test_the_real_engine_computes_in_the_dtype_this_cpu_runs_fast(real_engine: Any) -> None:
    import torch

    from inference.engine import cpu_has_native_bf16

    # The default model ships in bf16; on a CPU without native bf16 (AVX2 only), "auto"
    # upcasts it, since emulated bf16 ran this model about ten times slower.
    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert real_engine.model_config.dtype == expected
    assert real_engine.vllm_config.model_config.enforce_eager is True
