"""Where the consumer runs admission: Channels' one shared thread, or a small pool of its own.

Admission (`prepared_and_dispatched`) is a chain of short round trips (Redis for the limits,
the request lock, the slot and the queue; PostgreSQL for the plan; the store's writes) with a
little CPU between them; the semantic check's embedding is computed ahead of it, batched
(moderation.prefetch). On Channels' one shared thread a burst of sends waits for every round
trip of every earlier send. `CHAT_ADMISSION_THREADS` > 1 runs admissions on a pool of that
many threads of their own, so that one send's waits overlap another's work; a small pool keeps
the order close to first in, first out (a large one shares the interpreter lock out and every
answer of a burst starts as late as the last: docs/benchmarks.md). 1 keeps the shared thread.

Each call closes the thread's stale database connections before and after, as Channels'
`database_sync_to_async` does. Everything admission touches is safe across threads: the
request lock and the slots are in Redis, and the store serialises its writers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import close_old_connections

R = TypeVar("R")


@functools.cache
def _executor(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="admission")


def _with_fresh_connections(func: Callable[..., R]) -> Callable[..., R]:
    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> R:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return call


async def run_admission(func: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """`func(*args, **kwargs)` where `CHAT_ADMISSION_THREADS` says (context variables, such
    as the prefetched moderation scores, go with it)."""
    threads = settings.CHAT_ADMISSION_THREADS
    if threads <= 1:
        return await database_sync_to_async(func)(*args, **kwargs)
    wrapped = SyncToAsync(
        _with_fresh_connections(func), thread_sensitive=False, executor=_executor(threads)
    )
    return await wrapped(*args, **kwargs)
