"""The soak's memory diagnosis (config/memtrace.py): off unless MEMORY_TRACE_DIR is set; the
first SIGUSR2 takes a baseline, a later one names the allocation site that grew."""

from __future__ import annotations

import os
import signal
import tracemalloc
from pathlib import Path

import pytest

from config import memtrace

kept: list[bytes] = []


def _grow() -> None:
    kept.extend(bytes(1024) for _ in range(2048))  # 2 MB that stay


def test_nothing_is_traced_without_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMORY_TRACE_DIR", raising=False)
    assert memtrace.install() is False
    assert not tracemalloc.is_tracing()


def test_the_second_signal_names_the_site_that_grew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMORY_TRACE_DIR", str(tmp_path))
    previous = signal.getsignal(signal.SIGUSR2)
    try:
        assert memtrace.install() is True
        os.kill(os.getpid(), signal.SIGUSR2)
        baseline = (tmp_path / f"{os.getpid()}.txt").read_text()
        _grow()
        os.kill(os.getpid(), signal.SIGUSR2)
        grown = (tmp_path / f"{os.getpid()}.txt").read_text()
    finally:
        tracemalloc.stop()
        memtrace._baseline.clear()
        kept.clear()
        signal.signal(signal.SIGUSR2, previous)

    assert "baseline taken" in baseline
    first_site = grown.split("\n")[1:4]
    assert first_site[0].startswith("+2.0") or first_site[0].startswith("+1.9"), grown[:500]
    assert any("_grow" in line or "test_memtrace.py" in line for line in first_site), grown[:800]
