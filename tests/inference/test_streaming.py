"""The stream coroutine with a fake engine: coalescing, numbering, checkpoints, heartbeats,
stop, output moderation, and endings."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from chat.protocol import server_message_adapter
from inference import engine as engine_module
from inference import prepare, streaming
from inference.prepare import GenerationJob
from inference.stop import registry
from tests.inference.fakes import (
    FakeClock,
    FakeEngine,
    FakeStore,
    PassThroughModerator,
    RecordingLayer,
    SentenceModerator,
)

pytestmark = pytest.mark.usefixtures("stream_settings", "billing")

WORDS = [f"w{i} " for i in range(300)]


def job_for(engine: FakeEngine, **overrides: Any) -> GenerationJob:
    values: dict[str, Any] = {
        "generation_id": "gen-1",
        "owner_id": 7,
        "engine": engine,
        "prompt_token_ids": [1, 2, 3, 4, 5],
        "sampling_params": object(),
        "model_name": "m",
        "priority": 4,
    }
    values.update(overrides)
    return GenerationJob(**values)


async def stream(
    engine: FakeEngine,
    layer: RecordingLayer,
    clock: Any,
    *,
    moderator: Any = None,
    delta_log: list[tuple[str, int, str]] | None = None,
    **job: Any,
) -> Any:
    log = delta_log if delta_log is not None else []

    async def record(generation_id: str, seq: int, text: str) -> None:
        log.append((generation_id, seq, text))

    return await streaming.generation_stream(
        job_for(engine, **job),
        layer=layer,
        clock=clock,
        moderator=moderator or PassThroughModerator(),
        delta_log=record,
    )


async def stream_stopped_after(seconds: float, engine: FakeEngine, layer: RecordingLayer) -> Any:
    """Stream on the real clock; a stop arrives (as the listener would hear it) after `seconds`."""

    async def stop_later() -> None:
        await asyncio.sleep(seconds)
        registry.request("gen-1")

    stopper = asyncio.ensure_future(stop_later())
    try:
        return await stream(engine, layer, time.monotonic)
    finally:
        await stopper


def assert_protocol(layer: RecordingLayer) -> None:
    for _, group, message in layer.sent:
        assert group == "gen.gen-1"
        server_message_adapter.validate_python(message)


class StopAtSeq(RecordingLayer):
    """A subscriber that asks for a stop (as the listener would hear it) after delta `at`."""

    def __init__(self, clock: FakeClock, at: int) -> None:
        super().__init__(clock)
        self.at = at

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await super().group_send(group, message)
        if message["type"] == "generation.delta" and message["seq"] == self.at:
            registry.request(message["generation_id"])


# --- coalescing and numbering ------------------------------------------------------------------


async def test_deltas_concatenate_to_the_done_text_with_seq_without_gaps(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(WORDS, clock, step=0.004)
    log: list[tuple[str, int, str]] = []

    await stream(engine, layer, clock, delta_log=log)

    deltas = layer.events("generation.delta")
    (done,) = layer.events("generation.done")
    assert "".join(d["text"] for d in deltas) == "".join(WORDS) == done["text"]
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert done["usage"] == {"prompt_tokens": 5, "completion_tokens": len(WORDS)}
    assert done["finish_reason"] == "stop"
    assert layer.sent[-1][2] == done
    # Every delta is in the resume log, in order, before the closing message.
    assert [(seq, text) for _, seq, text in log] == [(d["seq"], d["text"]) for d in deltas]
    assert_protocol(layer)


async def test_at_most_one_delta_per_flush_interval(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(WORDS, clock, step=0.004)  # ~8 tokens per 30 ms interval

    await stream(engine, layer, clock)

    times = [at for at, _, m in layer.sent if m["type"] == "generation.delta"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # The last delta closes the stream and may follow sooner.
    assert all(gap >= 0.03 - 1e-9 for gap in gaps[:-1])
    total_seconds = len(WORDS) * 0.004
    assert len(times) <= total_seconds / 0.03 + 2
    assert len(times) < len(WORDS) / 5


async def test_first_token_is_published_at_once(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(["Hello", " world", "!"], clock, step=0.001)

    await stream(engine, layer, clock)

    first = layer.events("generation.delta")[0]
    assert first == {
        "type": "generation.delta",
        "generation_id": "gen-1",
        "seq": 1,
        "text": "Hello",
    }


async def test_the_request_carries_the_jobs_vllm_priority(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(["a"], clock)

    await stream(engine, layer, clock, priority=0)

    assert engine.priorities == [0]


# --- checkpoints and heartbeats ----------------------------------------------------------------


async def test_checkpoints_carry_the_released_text_its_seq_offsets_and_usage(
    layer: RecordingLayer, store: FakeStore, stream_settings: Any
) -> None:
    stream_settings.INFERENCE_CHECKPOINT_SECONDS = 0.05
    stream_settings.INFERENCE_FLUSH_INTERVAL_SECONDS = 0.01
    engine = FakeEngine([f"t{i} " for i in range(40)], FakeClock(), delay=0.01)

    await stream(engine, layer, time.monotonic)

    deltas = layer.events("generation.delta")
    assert len(store.checkpoints) >= 4
    for checkpoint in store.checkpoints:
        upto = [d["text"] for d in deltas if d["seq"] <= checkpoint["seq"]]
        assert checkpoint["text"] == "".join(upto)
        lengths = list(itertools.accumulate(len(text) for text in upto))
        assert checkpoint["seq_offsets"] == lengths
        assert checkpoint["usage"]["prompt_tokens"] == 5
    (finish,) = store.finishes
    assert finish["seq_offsets"] == list(itertools.accumulate(len(d["text"]) for d in deltas))


async def test_a_silent_engine_still_heartbeats_and_a_stop_ends_it(
    layer: RecordingLayer, store: FakeStore, stream_settings: Any
) -> None:
    stream_settings.INFERENCE_CHECKPOINT_SECONDS = 0.05
    stream_settings.INFERENCE_HEARTBEAT_SECONDS = 0.05
    engine = FakeEngine(["Hi", " there", " and"], FakeClock(), stall_after=2)

    started = time.monotonic()
    ending = await stream_stopped_after(0.5, engine, layer)

    # No token came for 0.5 s, yet the heartbeat kept moving (one write per interval).
    assert len(store.checkpoints) >= 5
    assert time.monotonic() - started < 1.5
    assert ending.state == "stopped"
    (done,) = layer.events("generation.done")
    assert done["finish_reason"] == "stopped"
    # What was released before the stall; the stop discards nothing the user saw.
    assert done["text"] == "".join(d["text"] for d in layer.events("generation.delta")) == "Hi"
    assert engine.running == set() and len(engine.aborted) == 1


async def test_a_quiet_generation_tells_its_clients_it_is_alive_with_its_last_seq(
    layer: RecordingLayer, store: FakeStore, stream_settings: Any
) -> None:
    stream_settings.INFERENCE_CHECKPOINT_SECONDS = 0.05
    stream_settings.INFERENCE_PROGRESS_SECONDS = 0.1
    engine = FakeEngine(["Hi", " there", " and"], FakeClock(), stall_after=2)

    await stream_stopped_after(0.6, engine, layer)

    kinds = [message["type"] for _, _, message in layer.sent]
    progress = layer.events("generation.progress")
    deltas = layer.events("generation.delta")
    # About one per 0.1 s of the 0.6 s without output, each naming the last seq published.
    assert len(progress) >= 3
    assert {p["seq"] for p in progress} == {deltas[-1]["seq"]}
    assert kinds.index("generation.progress") > len(deltas) - 1
    assert kinds[-1] == "generation.done"
    assert_protocol(layer)


async def test_a_generation_that_keeps_streaming_sends_no_progress(
    layer: RecordingLayer, stream_settings: Any
) -> None:
    stream_settings.INFERENCE_PROGRESS_SECONDS = 0.2
    engine = FakeEngine(WORDS[:40], FakeClock(), delay=0.01)

    await stream(engine, layer, time.monotonic)

    assert len(layer.events("generation.delta")) >= 5
    assert layer.events("generation.progress") == []


# --- stop --------------------------------------------------------------------------------------


async def test_a_stop_leaves_the_engine_and_keeps_the_text_the_user_saw(
    clock: FakeClock, store: FakeStore
) -> None:
    layer = StopAtSeq(clock, at=3)
    engine = FakeEngine(WORDS, clock, step=0.004)

    ending = await stream(engine, layer, clock)

    deltas = layer.events("generation.delta")
    (done,) = layer.events("generation.done")
    assert [d["seq"] for d in deltas] == [1, 2, 3]  # stopped at the flush after the request
    assert done["finish_reason"] == "stopped"
    assert done["text"] == "".join(d["text"] for d in deltas)
    assert engine.running == set() and len(engine.aborted) == 1
    # Only what was generated is billed, not max_tokens.
    assert done["usage"]["completion_tokens"] == engine.yielded < len(WORDS)
    (finish,) = store.finishes
    assert (finish["state"], finish["finish_reason"]) == ("stopped", "stopped")
    assert finish["text"] == done["text"]
    assert ending.billed_reason == "stopped"
    assert not registry.is_requested("gen-1")  # forgotten once the generation ended
    assert_protocol(layer)


async def test_a_generation_stopped_while_queued_never_reaches_the_engine(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(WORDS, clock)

    await stream(engine, layer, clock, stop_requested=True)

    assert engine.requests == []
    (done,) = layer.events("generation.done")
    assert done["finish_reason"] == "stopped"
    assert done["text"] == ""
    assert done["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}


async def test_a_stop_heard_before_the_stream_starts_is_applied_at_once(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    registry.request("gen-1")
    engine = FakeEngine(WORDS, clock)

    await stream(engine, layer, clock)

    (done,) = layer.events("generation.done")
    assert done["finish_reason"] == "stopped"
    assert done["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}
    assert engine.requests == []


# --- output moderation -------------------------------------------------------------------------


async def test_output_is_held_back_until_its_window_passes(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    pieces = ["One ", "two ", "three. ", "Four ", "five. ", "Six"]
    engine = FakeEngine(pieces, clock, step=0.05)  # one flush per piece
    moderator = SentenceModerator()

    await stream(engine, layer, clock, moderator=moderator)

    texts = [d["text"] for d in layer.events("generation.delta")]
    assert texts == ["One two three. ", "Four five. ", "Six"]
    assert layer.events("generation.done")[0]["text"] == "One two three. Four five. Six"


async def test_the_moderator_runs_once_per_flush_not_per_token(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(WORDS, clock, step=0.004)
    moderator = SentenceModerator()

    await stream(engine, layer, clock, moderator=moderator)

    assert moderator.calls <= len(WORDS) * 0.004 / 0.03 + 2
    assert layer.events("generation.done")[0]["text"] == "".join(WORDS)


async def test_a_blocked_window_ends_the_generation_with_only_released_text(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    pieces = ["Fine. ", "Also fine. ", "Now the ", "forbidden ", "word. ", "More. "]
    engine = FakeEngine(pieces, clock, step=0.05)
    moderator = SentenceModerator(banned="forbidden")

    ending = await stream(engine, layer, clock, moderator=moderator)

    kinds = [m["type"] for _, _, m in layer.sent]
    assert kinds[-2:] == ["moderation.blocked", "generation.done"]
    blocked, done = (m for _, _, m in layer.sent[-2:])
    assert blocked["categories"] == ["test"] and blocked["generation_id"] == "gen-1"
    assert done["finish_reason"] == "moderated"
    assert done["text"] == "Fine. Also fine. "
    assert all("forbidden" not in d["text"] for d in layer.events("generation.delta"))
    assert engine.running == set() and len(engine.aborted) == 1
    (finish,) = store.finishes
    assert finish["state"] == "moderated"
    assert finish["moderation"] == {"categories": ["test"], "message": moderator.message}
    assert ending.billed_reason == "moderated"
    assert_protocol(layer)


async def test_a_violation_in_the_held_tail_is_caught_at_the_end(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(["Fine. ", "then forbidden"], clock, step=0.05)

    await stream(engine, layer, clock, moderator=SentenceModerator(banned="forbidden"))

    done = layer.events("generation.done")[0]
    assert done["finish_reason"] == "moderated"
    assert done["text"] == "Fine. "


# --- endings -----------------------------------------------------------------------------------


async def test_the_end_is_written_once_as_complete_with_usage(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(["a", "b", "c"], clock, finish_reason="length")

    await stream(engine, layer, clock)

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

    await stream(engine, layer, clock)

    assert layer.events("generation.done") == []
    assert store.finishes == []


async def test_an_engine_error_fails_the_generation_and_keeps_the_text(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    engine = FakeEngine(WORDS, clock, step=0.004, fail_after=50, error=RuntimeError("boom"))

    with pytest.raises(RuntimeError):
        await stream(engine, layer, clock)

    (error,) = layer.events("generation.error")
    deltas = layer.events("generation.delta")
    assert error["code"] == "engine_error"
    # What the user saw; text still held for its flush (or moderation) is not shown.
    assert error["text"] == "".join(d["text"] for d in deltas)
    assert "".join(WORDS[:50]).startswith(error["text"]) and len(error["text"]) > 100
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

    await stream(engine, layer, clock)

    (error,) = layer.events("generation.error")
    assert error["code"] == "timeout"
    assert store.finishes[0]["state"] == "failed"


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
    monkeypatch.setattr(streaming, "_moderator", lambda job: PassThroughModerator())
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
    monkeypatch.setattr(prepare, "model_get_enabled", lambda *, name: None)
    prepare._model_cache.clear()

    await streaming.generation_run(generation_id="gen-1", owner_id=7)

    (error,) = layer.events("generation.error")
    assert error["code"] == "engine_error"
    assert "no-such-model" in error["message"]
    assert store.messages["gen-1"]["state"] == "failed"


async def test_checkpoints_name_the_worker_process_that_streams(
    clock: FakeClock, layer: RecordingLayer, store: FakeStore
) -> None:
    # The staff console lists each running generation with its worker (staff.selectors).
    from inference.worker import worker_name

    engine = FakeEngine(["Hello", " world"], clock)

    await stream(engine, layer, clock)

    assert store.checkpoints and {c["worker"] for c in store.checkpoints} == {worker_name()}
    assert worker_name()
