"""The soak's memory diagnosis (config/memtrace.py): off unless MEMORY_TRACE_DIR is set; the
first SIGUSR2 takes a baseline, a later one names the allocation site, the native memory and
the object types that grew."""

from __future__ import annotations

import os
import signal
import threading
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
    first_site = grown.split("the sites that grew most\n", 1)[1].split("\n")[:3]
    assert first_site[0].startswith("+2.0") or first_site[0].startswith("+1.9"), grown[:500]
    assert any("_grow" in line or "test_memtrace.py" in line for line in first_site), grown[:800]


class Marker:
    """An object type the test makes many of."""


def test_without_frames_the_report_counts_native_memory_and_object_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMORY_TRACE_DIR", str(tmp_path))
    monkeypatch.setenv("MEMORY_TRACE_FRAMES", "0")
    previous = signal.getsignal(signal.SIGUSR2)
    markers: list[Marker] = []
    try:
        assert memtrace.install(engine=True) is True
        assert not tracemalloc.is_tracing()
        os.kill(os.getpid(), signal.SIGUSR2)
        baseline = (tmp_path / f"{os.getpid()}.txt").read_text()
        markers.extend(Marker() for _ in range(5000))
        os.kill(os.getpid(), signal.SIGUSR2)
        grown = (tmp_path / f"{os.getpid()}.txt").read_text()
    finally:
        memtrace._baseline.clear()
        signal.signal(signal.SIGUSR2, previous)

    assert "baseline taken" in baseline and "\nrss: " in baseline
    assert "malloc in use: " in grown  # glibc, as on every machine the project runs on
    types = grown.split("object types whose count grew most:\n", 1)[1].splitlines()
    assert f"+5000 {__name__}.Marker" in types, grown
    assert "the sites that grew most" not in grown


def test_an_engine_process_is_not_traced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEMORY_TRACE_DIR", str(tmp_path))
    monkeypatch.delenv("MEMORY_TRACE_FRAMES", raising=False)
    assert memtrace.install(engine=True) is False
    assert not tracemalloc.is_tracing()


def test_counting_types_leaves_the_tuples_other_threads_are_building_alone() -> None:
    """`gc.get_objects()` in this process made `tuple(generator)` fail in another thread
    (`SystemError`, hundreds a second); the count runs in a forked child instead."""
    errors: list[SystemError] = []
    done = threading.Event()

    def build_tuples() -> None:
        while not done.is_set():
            try:
                tuple(str(number) for number in range(50))
            except SystemError as error:
                errors.append(error)

    builder = threading.Thread(target=build_tuples)
    builder.start()
    try:
        counts = [memtrace._types() for _ in range(20)]
    finally:
        done.set()
        builder.join()
    assert errors == []
    assert all(count["builtins.tuple"] > 1000 for count in counts)
