"""The stall watchdog: an engine whose processes live but that gives no output while
generations stream on it makes its worker leave, as a dead engine does, so that the supervisor
starts a fresh one and the reaper ends or re-runs what was running."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pytest_django import Settings

from inference import engine
from inference.engine import EngineHost, EngineSpec


@pytest.fixture
def spec(tmp_path: Path) -> EngineSpec:
    return EngineSpec(name="m", weights=str(tmp_path))


def test_an_engine_is_stalled_only_with_generations_running_and_no_output_past_the_limit(
    spec: EngineSpec,
) -> None:
    host = EngineHost()
    assert host.stalled(60, now=time.monotonic() + 3600) == []  # nothing running: idle
    with host.holding(spec):
        started = time.monotonic()
        assert host.stalled(60, now=started + 30) == []
        stalled = host.stalled(60, now=started + 90)
        assert [found for found, _ in stalled] == [spec] and stalled[0][1] >= 89
        host.progressed(spec)  # an output: the clock starts again
        assert host.stalled(60, now=time.monotonic() + 30) == []
        with host.holding(spec):  # another generation does not reset a silent engine's clock
            assert [found for found, _ in host.stalled(60, now=time.monotonic() + 61)] == [spec]
    assert host.stalled(60, now=time.monotonic() + 3600) == []  # all ended


def test_a_stalled_engine_makes_the_worker_leave(
    spec: EngineSpec, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INFERENCE_STALL_SECONDS = 1
    reasons: list[str] = []
    left = threading.Event()

    def leave(reason: str, *, grace_seconds: float) -> None:
        reasons.append(reason)
        assert grace_seconds == engine.STALLED_EXIT_GRACE_SECONDS
        left.set()

    monkeypatch.setattr(engine, "request_worker_exit", leave)
    host = EngineHost()
    try:
        with host.holding(spec):
            host._start_watchdog()
            assert left.wait(10)
    finally:
        host.shutdown()
    assert host._watchdog is not None and not _alive_after(host._watchdog, 5)
    assert "gave no output for" in reasons[0] and "1 generations running" in reasons[0]


def _alive_after(thread: threading.Thread, seconds: float) -> bool:
    thread.join(seconds)
    return thread.is_alive()


def test_the_watchdog_can_be_turned_off(spec: EngineSpec, settings: Settings) -> None:
    settings.INFERENCE_STALL_SECONDS = 0
    host = EngineHost()
    host._start_watchdog()
    assert host._watchdog is None
