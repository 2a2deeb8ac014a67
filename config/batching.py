"""Coalescing concurrent requests for the same kind of work into batches on a pool thread.

Used ahead of the web process's admission thread: a burst of messages (many users pressing
Enter at once) has its input embedded (`moderation.prefetch`) and its senders' plans read
(`accounts.plans`) in a few batches while the admission thread works through the burst, instead of
once per message on that one thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import weakref
from collections.abc import Callable
from typing import Any

from config import tracing

logger = logging.getLogger(__name__)


class Batcher:
    """Coalesces concurrent `submit(key)` calls into batches of at most `batch_size` keys for
    `compute(keys)`, which runs on a pool thread and returns one mapping for the whole batch,
    oldest keys first. The first key of a burst starts at once (no waiting for company); those
    arriving while a batch runs form the next ones. Call it on the event loop; the futures it
    returns may be waited on from any thread ({} when the batch failed: the caller then does
    its own work, as without a batch). Each batch is a trace span named `span`."""

    def __init__(
        self,
        compute: Callable[[list[str]], dict[str, Any]],
        *,
        batch_size: int,
        span: str,
        size_attribute: str,
    ) -> None:
        self._compute = compute
        self._batch_size = batch_size
        self._span = span
        self._size_attribute = size_attribute
        self._waiting: list[tuple[str, concurrent.futures.Future[dict[str, Any]]]] = []
        self._draining = False
        self._task: asyncio.Future[None] | None = None  # referenced while it runs

    def submit(self, key: str) -> concurrent.futures.Future[dict[str, Any]]:
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        self._waiting.append((key, future))
        if not self._draining:
            self._draining = True
            self._task = asyncio.ensure_future(self._drain())
        return future

    async def result(self, key: str) -> dict[str, Any]:
        return await asyncio.wrap_future(self.submit(key))

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._batch_size]
                del self._waiting[: self._batch_size]
                try:
                    with tracing.span(self._span, {self._size_attribute: len(batch)}):
                        result = await asyncio.to_thread(self._compute, [key for key, _ in batch])
                except Exception:
                    logger.warning("%s failed; each caller does its own", self._span, exc_info=True)
                    result = {}
                for _, future in batch:
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining = False


PerLoop = weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Batcher]


def for_running_loop(batchers: PerLoop, make: Callable[[], Batcher]) -> Batcher:
    """The running event loop's batcher in `batchers`, made on first use: a batcher's task and
    futures belong to one loop (Daphne runs one; tests run many)."""
    loop = asyncio.get_running_loop()
    batcher = batchers.get(loop)
    if batcher is None:
        batcher = batchers[loop] = make()
    return batcher
