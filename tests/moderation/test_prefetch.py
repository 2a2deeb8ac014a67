"""Input moderation prefetch: concurrent messages are embedded in batches ahead of the
consumer's shared thread, and the semantic check uses those scores as its own."""

from __future__ import annotations

import asyncio
import threading
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

    batcher = prefetch.Batcher(compute)
    first = asyncio.ensure_future(batcher.scores("a"))
    await asyncio.sleep(0.05)
    assert batches == [["a"]]  # started alone, at once
    rest = [asyncio.ensure_future(batcher.scores(text)) for text in ("bb", "ccc", "dddd")]
    await asyncio.sleep(0.05)
    release.set()
    results = await asyncio.gather(first, *rest)

    assert batches == [["a"], ["bb", "ccc", "dddd"]]
    assert results[0] == {"a": 1}
    assert all(result == {"bb": 2, "ccc": 3, "dddd": 4} for result in results[1:])


async def test_a_failed_batch_leaves_the_checks_to_compute_alone() -> None:
    def compute(texts: list[str]) -> dict[str, Any]:
        raise RuntimeError("model unavailable")

    batcher = prefetch.Batcher(compute)
    assert await asyncio.gather(batcher.scores("x"), batcher.scores("y")) == [{}, {}]
    assert await batcher.scores("z") == {}  # and the next burst starts a new drain


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
    np.testing.assert_allclose(
        np.stack([scores[p] for p in pieces]), real.compute(pieces), atol=1e-5
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

    assert seen[0] is not None and set(seen[0]) == set(semantic.segments(semantic.normalize(text)))
    assert seen[1] is None  # reset after the block


@pytest.mark.django_db
def test_nothing_is_embedded_when_the_check_is_off(settings: Any) -> None:
    settings.MODERATION_CHECKS = ["pii", "rules"]
    state.reset_local()
    assert semantic.prefetch(["i really want to kill myself"]) == {}
