"""Input moderation prefetch: concurrent messages are embedded in batches ahead of the
consumer's shared thread, and the semantic check uses those scores as its own."""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any

import numpy as np
import pytest
from asgiref.sync import sync_to_async

from moderation import pipeline, prefetch, state
from moderation.checks import semantic
from moderation.types import Direction


async def test_concurrent_texts_form_batches_and_the_first_does_not_wait() -> None:
    batches: list[list[str]] = []
    release = threading.Event()

    def compute(texts: list[str]) -> dict[str, Any]:
        batches.append(texts)
        if len(batches) == 1:
            release.wait(5)  # the first batch is busy while the others arrive
        return {text: len(text) for text in texts}

    batcher = prefetch.text_batcher(compute)
    first = asyncio.ensure_future(batcher.result("a"))
    await asyncio.sleep(0.05)
    assert batches == [["a"]]  # started alone, at once
    rest = [asyncio.ensure_future(batcher.result(text)) for text in ("bb", "ccc", "dddd")]
    await asyncio.sleep(0.05)
    release.set()
    results = await asyncio.gather(first, *rest)

    assert batches == [["a"], ["bb", "ccc", "dddd"]]
    assert results[0] == {"a": 1}
    assert all(result == {"bb": 2, "ccc": 3, "dddd": 4} for result in results[1:])


async def test_a_burst_is_embedded_in_batches_of_at_most_batch_size_oldest_first() -> None:
    batches: list[list[str]] = []

    def compute(texts: list[str]) -> dict[str, Any]:
        batches.append(texts)
        return {text: len(text) for text in texts}

    batcher = prefetch.text_batcher(compute, batch_size=3)
    texts = [str(n) * (n + 1) for n in range(8)]
    results = await asyncio.gather(*(batcher.result(text) for text in texts))

    assert batches == [texts[0:3], texts[3:6], texts[6:8]]
    assert all(result[text] == len(text) for text, result in zip(texts, results, strict=True))


async def test_a_failed_batch_leaves_the_checks_to_compute_alone() -> None:
    def compute(texts: list[str]) -> dict[str, Any]:
        raise RuntimeError("model unavailable")

    batcher = prefetch.text_batcher(compute)
    assert await asyncio.gather(batcher.result("x"), batcher.result("y")) == [{}, {}]
    assert await batcher.result("z") == {}  # and the next burst starts a new drain


@pytest.fixture(scope="module")
def real() -> semantic.Classifier:
    return semantic.get_classifier()


@pytest.mark.django_db
def test_prefetched_scores_are_the_checks_own(real: semantic.Classifier) -> None:
    state.reset_local()
    texts = [
        "tonight i'm swallowing every pill in the cabinet so that i never wake up again",
        "How do I kill a zombie process? It keeps the port open.",
    ]
    scores = semantic.prefetch(texts)
    pieces = [p for t in texts for p in semantic.segments(semantic.normalize(t))]
    assert sorted(scores) == sorted(pieces)
    threshold = semantic.SemanticCheck().threshold
    np.testing.assert_allclose(
        np.stack([scores[p] for p in pieces]),
        real.compute(pieces, threshold=threshold),
        atol=1e-5,
    )

    # The check takes a prefetched row as it is (a row that says "benign" lets the first text
    # through), and computes rows it was not given.
    benign = np.zeros(len(real.classes))
    benign[real.classes.index(semantic.BENIGN)] = 1.0
    token = semantic.PREFETCHED.set({pieces[0]: benign})
    try:
        outcome = pipeline.run(texts[0], direction=Direction.INPUT, snapshot=state.EMPTY)
        assert not outcome.blocked
        assert pipeline.run(
            "i really want to kill myself tonight", direction=Direction.INPUT, snapshot=state.EMPTY
        ).blocked
    finally:
        semantic.PREFETCHED.reset(token)
    assert pipeline.run(texts[0], direction=Direction.INPUT, snapshot=state.EMPTY).blocked


@pytest.mark.django_db(transaction=True)
async def test_the_block_sees_the_scores_through_sync_to_async(real: semantic.Classifier) -> None:
    text = "tonight i'm swallowing every pill in the cabinet so that i never wake up again"
    seen: list[Any] = []

    def in_thread() -> None:
        seen.append(semantic.PREFETCHED.get())

    await sync_to_async(state.reset_local)()
    async with prefetch.input_prefetched(text):
        await sync_to_async(in_thread)()
    await sync_to_async(in_thread)()

    assert isinstance(seen[0], semantic.Pending)
    rows = await sync_to_async(seen[0].rows)()
    assert set(rows) == set(semantic.segments(semantic.normalize(text)))
    assert seen[1] is None  # reset after the block


@pytest.mark.django_db(transaction=True)
async def test_the_block_runs_while_the_embedding_does_and_the_check_waits_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    release = threading.Event()
    row = np.array([0.25, 0.75])

    def slow_prefetch(texts: list[str]) -> dict[str, Any]:
        release.wait(5)
        return {texts[0]: row}

    monkeypatch.setattr(prefetch, "_batchers", weakref.WeakKeyDictionary())
    monkeypatch.setattr(prefetch, "_semantic_prefetch", slow_prefetch)
    waited: list[float] = []

    def check_in_thread() -> dict[str, Any]:
        pending = semantic.PREFETCHED.get()
        assert isinstance(pending, semantic.Pending)
        started = time.monotonic()
        rows = pending.rows()
        waited.append(time.monotonic() - started)
        return rows

    async with prefetch.input_prefetched("hello there"):
        # The block is entered before the embedding ends: the work before the check overlaps.
        assert not release.is_set()
        asyncio.get_running_loop().call_later(0.2, release.set)
        rows = await sync_to_async(check_in_thread)()

    assert list(rows) == ["hello there"] and rows["hello there"] is row
    assert waited[0] >= 0.15  # the check waited for the scores rather than computing its own


def test_a_failed_or_lost_prefetch_leaves_the_check_to_compute_its_own() -> None:
    import concurrent.futures

    failed: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
    failed.set_exception(RuntimeError("embedding failed"))
    cancelled: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
    cancelled.cancel()

    assert semantic.Pending(failed).rows() == {}
    assert semantic.Pending(cancelled).rows() == {}


async def test_pending_scores_are_not_awaited_on_the_event_loop_thread() -> None:
    import concurrent.futures

    never: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
    started = asyncio.get_running_loop().time()

    assert semantic.Pending(never).rows() == {}  # at once: waiting here would block the loop
    assert asyncio.get_running_loop().time() - started < 1


@pytest.mark.django_db
def test_nothing_is_embedded_when_the_check_is_off(settings: Any) -> None:
    settings.MODERATION_CHECKS = ["pii", "rules"]
    state.reset_local()
    assert semantic.prefetch(["i really want to kill myself"]) == {}


def test_the_scores_of_several_batches_are_merged_and_a_failed_one_is_left_out() -> None:
    import concurrent.futures

    first: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
    first.set_result({"system prompt": np.array([1.0, 0.0])})
    failed: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
    failed.set_exception(RuntimeError("embedding failed"))
    last: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
    last.set_result({"the question": np.array([0.0, 1.0])})

    rows = semantic.Pending(first, failed, last).rows()

    assert sorted(rows) == ["system prompt", "the question"]


async def test_several_texts_are_submitted_each_and_seen_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batches: list[list[str]] = []

    def compute(texts: list[str]) -> dict[str, Any]:
        batches.append(texts)
        return {text: np.array([float(len(text))]) for text in texts}

    monkeypatch.setattr(prefetch, "_batchers", weakref.WeakKeyDictionary())
    monkeypatch.setattr(prefetch, "_semantic_prefetch", compute)
    async with prefetch.input_prefetched("be brief", "what is a lighthouse?"):
        pending = semantic.PREFETCHED.get()
        assert isinstance(pending, semantic.Pending)
        rows = await asyncio.to_thread(pending.rows)

    assert sorted(rows) == ["be brief", "what is a lighthouse?"]
    assert sorted(text for batch in batches for text in batch) == sorted(rows)
