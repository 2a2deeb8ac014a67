"""The stream coroutine with a fake engine: coalescing, numbering, checkpoints, endings."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from chat.protocol import server_message_adapter
from inference import engine as engine_module
from inference import streaming
from inference.streaming import GenerationJob, generation_stream
from tests.inference.fakes import FakeClock, FakeEngine, FakeStore, RecordingLayer

pytestmark = pytest.mark.usefixtures("stream_settings")

WORDS = [f"w{i} " for i in range(300)]


def job_for(engine: FakeEngine, *, seq_base: int = 0) -> GenerationJob:
    return GenerationJob(
        generation_id="gen-1",
        owner_id=7,
        engine=engine,
        prompt_token_ids=[1, 2, 3, 4, 5],
        sampling_params=object(),
        seq_base=seq_base,
    )


def assert_protocol(layer: RecordingLayer) -> None:
    for _, group, message in layer.sent:
        assert group == "gen.gen-1"
        server_message_adapter.validate_python(message)


async def test_deltas_concatenate_to_the_done_text_with_seq_without_gaps(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(WORDS, clock, step=0.004)

    await generation_stream(job_for(engine), layer=layer, clock=clock)

    deltas = layer.events("generation.delta")
    (done,) = layer.events("generation.done")
    assert "".join(d["text"] for d in deltas) == "".join(WORDS) == done["text"]
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert done["usage"] == {"prompt_tokens": 5, "completion_tokens": len(WORDS)}
    assert done["finish_reason"] == "stop"
    assert layer.sent[-1][2] is done
    assert_protocol(layer)


async def test_at_most_one_delta_per_flush_interval(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(WORDS, clock, step=0.004)  # ~8 tokens per 30 ms interval

    await generation_stream(job_for(engine), layer=layer, clock=clock)

    times = [at for at, _, m in layer.sent if m["type"] == "generation.delta"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # The last delta closes the stream and may follow sooner.
    assert all(gap >= 0.03 - 1e-9 for gap in gaps[:-1])
    # Coalescing happened: far fewer messages than tokens, about one per interval.
    total_seconds = len(WORDS) * 0.004
    assert len(times) <= total_seconds / 0.03 + 2
    assert len(times) < len(WORDS) / 5


async def test_first_token_is_published_at_once(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(["Hello", " world", "!"], clock, step=0.001)

    await generation_stream(job_for(engine), layer=layer, clock=clock)

    first = layer.events("generation.delta")[0]
    assert first == {
        "type": "generation.delta",
        "generation_id": "gen-1",
        "seq": 1,
        "text": "Hello",
    }


async def test_checkpoints_about_once_a_second_match_the_published_deltas(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(WORDS, clock, step=0.01)  # 3 seconds of tokens

    await generation_stream(job_for(engine), layer=layer, clock=clock)

    deltas = layer.events("generation.delta")
    assert 2 <= len(store.checkpoints) <= 3
    for checkpoint in store.checkpoints:
        up_to = [d["text"] for d in deltas if d["seq"] <= checkpoint["seq"]]
        assert checkpoint["text"] == "".join(up_to)


async def test_the_end_is_written_once_as_complete_with_usage(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(["a", "b", "c"], clock, finish_reason="length")

    await generation_stream(job_for(engine), layer=layer, clock=clock)

    (finish,) = store.finishes
    assert finish["state"] == "complete"
    assert finish["text"] == "abc"
    assert finish["finish_reason"] == "length"
    assert finish["usage"] == {"prompt_tokens": 5, "completion_tokens": 3}
    assert finish["seq"] == layer.events("generation.delta")[-1]["seq"]


async def test_nothing_is_announced_when_the_generation_was_already_final(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    store.messages["gen-1"] = {"state": "stopped", "owner_id": 7}
    engine = FakeEngine(["a", "b"], clock)

    await generation_stream(job_for(engine), layer=layer, clock=clock)

    assert layer.events("generation.done") == []
    assert store.finishes == []


async def test_an_engine_error_fails_the_generation_and_keeps_the_text(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(WORDS, clock, step=0.004, fail_after=50, error=RuntimeError("boom"))

    with pytest.raises(RuntimeError):
        await generation_stream(job_for(engine), layer=layer, clock=clock)

    (error,) = layer.events("generation.error")
    deltas = layer.events("generation.delta")
    assert error["code"] == "engine_error"
    assert error["text"] == "".join(WORDS[:50]) == "".join(d["text"] for d in deltas)
    assert "boom" not in error["message"]  # no internals leak to clients
    (finish,) = store.finishes
    assert finish["state"] == "failed"
    assert finish["text"] == error["text"]
    assert_protocol(layer)


async def test_a_generation_past_the_time_limit_ends_with_a_timeout_error(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore, stream_settings: Any
) -> None:
    stream_settings.INFERENCE_TASK_TIME_LIMIT_SECONDS = 0
    engine = FakeEngine(["a", "b", "c"], clock)

    await generation_stream(job_for(engine), layer=layer, clock=clock)

    (error,) = layer.events("generation.error")
    assert error["code"] == "timeout"
    assert store.finishes[0]["state"] == "failed"


async def test_a_redelivered_generation_continues_the_seq(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(["a", "b"], clock, step=0.05)

    await generation_stream(job_for(engine, seq_base=4), layer=layer, clock=clock)

    assert [d["seq"] for d in layer.events("generation.delta")] == [5, 6]


async def test_a_dead_engine_fails_the_generation_and_stops_the_worker(
    clock: FakeClock, store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vllm.v1.engine.exceptions import EngineDeadError

    layer = RecordingLayer(clock)
    exits: list[str] = []
    engine = FakeEngine(["a", "b", "c"], clock, fail_after=1, error=EngineDeadError())
    store.messages["gen-1"] = {"state": "queued", "owner_id": 7}
    monkeypatch.setattr(streaming, "get_channel_layer", lambda: layer)
    monkeypatch.setattr(streaming, "generation_prepare", lambda **_: job_for(engine))
    monkeypatch.setattr(engine_module, "request_worker_exit", exits.append)

    await streaming.generation_run(generation_id="gen-1", owner_id=7)

    assert len(exits) == 1
    assert layer.events("generation.error")[0]["code"] == "engine_error"
    assert store.messages["gen-1"]["state"] == "failed"


async def test_an_unknown_model_fails_the_generation_with_a_clear_message(
    clock: FakeClock, store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = RecordingLayer(clock)
    store.messages["gen-1"] = {
        "state": "queued",
        "owner_id": 7,
        "model": "no-such-model",
        "conversation_id": "c1",
        "parent_id": None,
    }
    monkeypatch.setattr(streaming, "get_channel_layer", lambda: layer)
    monkeypatch.setattr(streaming, "model_get_enabled", lambda *, name: None)

    await streaming.generation_run(generation_id="gen-1", owner_id=7)

    (error,) = layer.events("generation.error")
    assert error["code"] == "engine_error"
    assert "no-such-model" in error["message"]
    assert store.messages["gen-1"]["state"] == "failed"


async def test_a_final_message_is_not_generated_again(store: FakeStore) -> None:
    store.messages["gen-1"] = {"state": "complete", "owner_id": 7}

    assert streaming.generation_prepare(generation_id="gen-1", owner_id=7) is None
    assert streaming.generation_prepare(generation_id="gen-1", owner_id=8) is None
