"""Concurrent encoder calls from many threads are joined into batches (moderation/checks/
coalesce.py): the e5 engine runs one call at a time, and 16 messages queued behind a lock
gave p99 1.3 s."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from moderation.checks.coalesce import Coalescer


def _slow_upper(calls: list[list[str]], started: threading.Event | None = None):  # type: ignore[no-untyped-def]
    def run(texts: list[str]) -> list[str]:
        calls.append(list(texts))
        if started is not None:
            started.set()
        time.sleep(0.1)  # the engine is busy while others arrive
        return [t.upper() for t in texts]

    return run


def test_callers_arriving_during_a_call_share_the_next_one_and_each_gets_its_own_results() -> None:
    calls: list[list[str]] = []
    started = threading.Event()
    coalescer: Coalescer[str] = Coalescer(_slow_upper(calls, started))
    with ThreadPoolExecutor(max_workers=9) as pool:
        first = pool.submit(coalescer.call, ["a0"])
        started.wait(5)
        rest = [pool.submit(coalescer.call, [f"b{i}", f"c{i}"]) for i in range(8)]
        results = [first.result(5)] + [future.result(5) for future in rest]

    assert results[0] == ["A0"]
    assert results[1:] == [[f"B{i}", f"C{i}"] for i in range(8)]
    assert calls[0] == ["a0"]  # the first caller does not wait for company
    assert len(calls) == 2  # the eight that came during it went together
    assert sorted(calls[1]) == sorted(t for i in range(8) for t in (f"b{i}", f"c{i}"))


def test_a_batch_never_exceeds_max_texts_but_a_larger_request_still_runs_alone() -> None:
    calls: list[list[str]] = []
    started = threading.Event()
    coalescer: Coalescer[str] = Coalescer(_slow_upper(calls, started), max_texts=4)
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = pool.submit(coalescer.call, ["x"])
        started.wait(5)
        futures = [pool.submit(coalescer.call, ["p", "q"]) for _ in range(5)]
        big = pool.submit(coalescer.call, ["1", "2", "3", "4", "5", "6"])
        assert big.result(5) == ["1", "2", "3", "4", "5", "6"]
        assert all(future.result(5) == ["P", "Q"] for future in futures)
        first.result(5)

    assert [len(call) for call in calls[1:]] and all(
        len(call) <= 4 or call == ["1", "2", "3", "4", "5", "6"] for call in calls
    )
    assert sum(len(call) for call in calls) == 1 + 10 + 6


def test_an_error_reaches_every_caller_of_that_batch_and_the_next_batch_still_runs() -> None:
    started = threading.Event()
    proceed = threading.Event()
    failures = {"left": 1}

    def run(texts: list[str]) -> list[str]:
        started.set()
        proceed.wait(5)
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("engine failed")
        return list(texts)

    coalescer: Coalescer[str] = Coalescer(run)
    with ThreadPoolExecutor(max_workers=3) as pool:
        first = pool.submit(coalescer.call, ["a"])
        started.wait(5)
        second = pool.submit(coalescer.call, ["b"])
        time.sleep(0.05)
        proceed.set()
        with pytest.raises(RuntimeError, match="engine failed"):
            first.result(5)
        assert second.result(5) == ["b"]
    assert coalescer.call(["c"]) == ["c"]  # not left busy


def test_a_wrong_number_of_results_is_an_error_not_a_misattribution() -> None:
    coalescer: Coalescer[str] = Coalescer(lambda texts: texts[:-1])
    with pytest.raises(RuntimeError, match="returned 1 results"):
        coalescer.call(["a", "b"])


def test_e5_batched_across_threads_gives_each_text_the_vector_it_gets_alone() -> None:
    from moderation.checks.embedders import E5, get_embedder

    encoder = get_embedder(E5)
    texts = [f"message number {i} about the weather in town" for i in range(12)]
    alone = np.stack([encoder.encode([text])[0] for text in texts])
    with ThreadPoolExecutor(max_workers=12) as pool:
        together = np.stack(list(pool.map(lambda text: encoder.encode([text])[0], texts)))
    assert np.allclose(alone, together, atol=1e-4)


def test_with_two_parallel_calls_a_second_caller_starts_at_once_and_later_ones_queue() -> None:
    calls: list[list[str]] = []
    running = threading.Semaphore(0)
    release = threading.Event()

    def run(texts: list[str]) -> list[str]:
        calls.append(list(texts))
        running.release()
        release.wait(5)
        return list(texts)

    coalescer: Coalescer[str] = Coalescer(run, parallel=2)
    with ThreadPoolExecutor(max_workers=5) as pool:
        first = pool.submit(coalescer.call, ["a"])
        assert running.acquire(timeout=5)
        second = pool.submit(coalescer.call, ["b"])
        assert running.acquire(timeout=5)  # did not wait for the first call to end
        rest = [pool.submit(coalescer.call, [t]) for t in ("c", "d", "e")]
        time.sleep(0.05)
        assert len(calls) == 2  # no third call while two run
        release.set()
        assert [f.result(5) for f in (first, second, *rest)] == [["a"], ["b"], ["c"], ["d"], ["e"]]
    assert sorted(t for call in calls for t in call) == ["a", "b", "c", "d", "e"]
    assert len(calls) <= 4  # c, d and e went in one or two calls, not one each
