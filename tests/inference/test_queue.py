"""Starting a generation: it leaves the waiting queue (real Redis), its subscribers hear
position 0, the next waiting ones hear their new places, and the user's priority reaches
vLLM (lower is sooner there)."""

from __future__ import annotations

import contextlib
import types
import uuid
from typing import Any

import pytest

from chat.generation import waiting
from inference import engine as engine_module
from inference import prepare, streaming
from inference.prepare import vllm_priority
from tests.inference.fakes import (
    FakeClock,
    FakeEngine,
    FakeStore,
    PassThroughModerator,
    RecordingLayer,
)

pytestmark = pytest.mark.usefixtures("stream_settings", "billing")


class FakeTokenizer:
    def apply_chat_template(self, messages: list[dict[str, str]], **_: Any) -> str:
        return " ".join(m["content"] for m in messages)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(range(len(text.split())))


def test_user_priority_maps_to_vllm_lower_is_sooner() -> None:
    assert vllm_priority(9) < vllm_priority(5) < vllm_priority(0)
    assert (vllm_priority(9), vllm_priority(5), vllm_priority(0)) == (0, 4, 9)
    assert vllm_priority(None) == vllm_priority(5)
    assert vllm_priority(42) == 0 and vllm_priority(-3) == 9  # clamped


async def test_a_started_generation_leaves_the_queue_and_the_others_move_up(
    store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    layer = RecordingLayer(clock)
    queue = f"inference.test-{uuid.uuid4().hex[:8]}"
    first, second, third = (uuid.uuid4().hex for _ in range(3))
    for index, generation_id in enumerate((first, second, third)):
        waiting.add(queue=queue, generation_id=generation_id, priority=5 - index * 0)
    model = types.SimpleNamespace(
        name="m",
        queue=queue,
        context_length=2048,
        max_output_tokens=64,
        default_max_tokens=16,
        default_temperature=0.5,
        default_top_p=0.9,
        default_min_p=0.0,
        stop_sequences=[],
        weights_location="/nowhere",
        tokenizer_location="/nowhere",
        pk=None,  # no registry row: no versions
    )
    engine = FakeEngine(["Hello", " there"], clock)
    engine.get_tokenizer = FakeTokenizer  # type: ignore[attr-defined]
    store.messages[first] = {
        "id": "a1",
        "owner_id": 7,
        "state": "queued",
        "model": "m",
        "conversation_id": "c1",
        "parent_id": "u1",
    }
    store.paths["u1"] = [{"id": "u1", "role": "user", "content": "Hi there"}]
    monkeypatch.setattr(prepare, "model_cached", lambda *, name: model)
    monkeypatch.setattr(
        engine_module,
        "host",
        types.SimpleNamespace(
            engine_for=lambda spec: engine,
            holding=lambda spec: contextlib.nullcontext(),
            progressed=lambda spec: None,
        ),
    )
    monkeypatch.setattr(streaming, "get_channel_layer", lambda: layer)
    monkeypatch.setattr(streaming, "_moderator", lambda job: PassThroughModerator())
    monkeypatch.setattr(streaming.stop_listener, "ensure_started", lambda: None)

    try:
        await streaming.generation_run(generation_id=first, owner_id=7, priority=9)
        # The others' positions go out in the background: wait for them (bounded).
        for _ in range(200):
            if len(layer.events("generation.queued")) >= 3:
                break
            await streaming.asyncio.sleep(0.01)
    finally:
        for generation_id in (first, second, third):
            waiting.remove(queue=queue, generation_id=generation_id)

    queued = layer.events("generation.queued")
    assert queued[0] == {"type": "generation.queued", "generation_id": first, "position": 0}
    assert {(m["generation_id"], m["position"]) for m in queued[1:]} == {(second, 1), (third, 2)}
    kinds = [m["type"] for _, _, m in layer.sent if m["generation_id"] == first]
    assert kinds[0] == "generation.queued" and kinds[-1] == "generation.done"
    assert engine.priorities == [0]  # a high-priority user is served first by vLLM
    assert waiting.position(queue=queue, generation_id=first) is None


def test_ignore_eos_setting_makes_generations_exactly_max_tokens(settings: Any) -> None:
    model = types.SimpleNamespace(
        context_length=2048,
        max_output_tokens=64,
        default_max_tokens=16,
        default_temperature=0.5,
        default_top_p=0.9,
        default_min_p=0.0,
        stop_sequences=[],
    )
    settings.INFERENCE_IGNORE_EOS = True
    assert prepare.sampling_for(model, {}, prompt_tokens=10).ignore_eos is True  # type: ignore[arg-type]
    settings.INFERENCE_IGNORE_EOS = False
    assert prepare.sampling_for(model, {}, prompt_tokens=10).ignore_eos is False  # type: ignore[arg-type]
