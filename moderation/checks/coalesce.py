"""Concurrent calls to a batch function, from many threads, joined into one call.

multilingual-e5-small's engine keeps scratch buffers in the model, so one call runs at a time,
and it streams each weight once for a whole batch: 16 texts in one call cost little more than
one. Behind a plain lock, 16 messages checked at once (the web process's thread pool, the
worker's windows) each waited for every other's call, and the last waited for fifteen: p99 1.3
s at 16 at once, past the input budget. Here a caller that finds the engine busy queues its
texts; when the running call ends, everything queued meanwhile goes in the next call, made by
the first thread that queued (so no thread serves the others for longer than its own batch).
This is what `moderation/prefetch.py` does for the consumer's bursts on its event loop; this
one serves threads, wherever the check runs.

Bounded: one call takes at most `max_texts` texts (a request larger than that runs alone), so
a call's cost, and the wait it imposes on the next, stays that of `max_texts` segments.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Result = TypeVar("Result")


class _Request(Generic[Result]):
    __slots__ = ("error", "lead", "ready", "result", "texts")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.ready = threading.Event()
        self.lead = False  # set with `ready` when this request's thread makes the next call
        self.result: list[Result] | None = None
        self.error: BaseException | None = None


class Coalescer(Generic[Result]):
    """`call(texts)` returns `run(texts)`'s items for these texts, one per text, in order;
    `run` sees the texts of every call waiting at that moment, concatenated, and must return
    one item per text. An exception from `run` is raised in every caller of that batch. At
    most `parallel` calls of `run` at once (1 for an engine that cannot run twice at once)."""

    def __init__(
        self,
        run: Callable[[list[str]], list[Result]],
        *,
        max_texts: int = 64,
        parallel: int = 1,
    ) -> None:
        self._run = run
        self._max_texts = max_texts
        self._parallel = parallel
        self._mutex = threading.Lock()
        self._queue: list[_Request[Result]] = []
        self._running = 0

    def call(self, texts: list[str]) -> list[Result]:
        request: _Request[Result] = _Request(list(texts))
        with self._mutex:
            leading = self._running < self._parallel
            if leading:
                self._running += 1
            else:
                self._queue.append(request)
        if not leading:
            request.ready.wait()
            if not request.lead:
                return self._outcome(request)
        # This thread makes a call, for its own texts and those queued before it.
        batch = self._take(request)
        self._execute(batch)
        self._hand_over()
        return self._outcome(request)

    def _take(self, first: _Request[Result]) -> list[_Request[Result]]:
        """`first` and the oldest queued requests whose texts fit in one call with it."""
        with self._mutex:
            count, total = 0, len(first.texts)
            for queued in self._queue:
                if total + len(queued.texts) > self._max_texts:
                    break
                count += 1
                total += len(queued.texts)
            batch, self._queue = self._queue[:count], self._queue[count:]
        return [first, *batch]

    def _execute(self, batch: list[_Request[Result]]) -> None:
        texts = [text for queued in batch for text in queued.texts]
        try:
            items = list(self._run(texts))
            if len(items) != len(texts):
                raise RuntimeError(f"batch of {len(texts)} texts returned {len(items)} results")
        except BaseException as exc:
            for queued in batch:
                queued.error = exc
                queued.ready.set()
            return
        start = 0
        for queued in batch:
            queued.result = items[start : start + len(queued.texts)]
            start += len(queued.texts)
            queued.ready.set()

    def _hand_over(self) -> None:
        """The next call is made by the oldest request still queued, on its own thread; with
        none queued, this call's slot is free."""
        with self._mutex:
            if not self._queue:
                self._running -= 1
                return
            following = self._queue.pop(0)
        following.lead = True
        following.ready.set()

    @staticmethod
    def _outcome(request: _Request[Result]) -> list[Result]:
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result
