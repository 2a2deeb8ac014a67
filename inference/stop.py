"""Stop requests, as this worker process sees them.

The web tier publishes a generation id on the Redis channel `chat:stop` (and sets the key
`chat:stop:<id>`; see `chat.generation.stop`). One listener per process, an asyncio task on
the engine loop, keeps what it hears in memory; a running stream asks
`StopRegistry.track(id)` once and then only reads `event.is_set()` at each flush. The listener
reconnects with backoff when Redis goes away, and after every (re)subscription it re-reads the
keys of the generations that run here, so a stop published while it was deaf still lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import OrderedDict
from typing import Any

from django.conf import settings

from chat.generation.names import STOP_CHANNEL, stop_key

logger = logging.getLogger(__name__)

# Stops for generations that are not running here (yet): remembered, oldest forgotten first.
REMEMBERED_STOPS = 10_000
BACKOFF_FIRST_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 5.0


def _text(raw: Any) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


class StopRegistry:
    """Stop requests heard by this process. Used only on the engine loop's thread."""

    def __init__(self) -> None:
        self._active: dict[str, asyncio.Event] = {}
        self._requested: OrderedDict[str, None] = OrderedDict()

    def track(self, generation_id: str) -> asyncio.Event:
        """Start watching a generation; its event is set when a stop for it arrives (at once
        when one arrived already)."""
        event = self._active.get(generation_id)
        if event is None:
            event = self._active[generation_id] = asyncio.Event()
        if generation_id in self._requested:
            event.set()
        return event

    def untrack(self, generation_id: str) -> None:
        self._active.pop(generation_id, None)
        self._requested.pop(generation_id, None)

    def request(self, generation_id: str) -> None:
        event = self._active.get(generation_id)
        if event is not None:
            event.set()
            return
        self._requested[generation_id] = None
        self._requested.move_to_end(generation_id)
        while len(self._requested) > REMEMBERED_STOPS:
            self._requested.popitem(last=False)

    def is_requested(self, generation_id: str) -> bool:
        event = self._active.get(generation_id)
        return event.is_set() if event is not None else generation_id in self._requested

    @property
    def active(self) -> list[str]:
        return list(self._active)


registry = StopRegistry()


class StopListener:
    """Subscribes to `chat:stop` and feeds `registry`; one per process, on the engine loop."""

    def __init__(
        self, stops: StopRegistry, *, url: str | None = None, client_name: str | None = None
    ) -> None:
        self.stops = stops
        self.url = url
        # Named, so that operators (and tests) can find this connection in CLIENT LIST.
        self.client_name = client_name or f"inference-stop-{os.getpid()}"
        self.task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()
        self.reconnects = 0

    def ensure_started(self) -> None:
        """Start listening (call on the engine loop); a no-op when already listening there."""
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._run(), name="stop-listener")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None

    async def _run(self) -> None:
        backoff = BACKOFF_FIRST_SECONDS
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.subscribed.clear()
                self.reconnects += 1
                logger.warning("stop listener lost Redis (%s); retrying in %.1fs", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
            else:
                backoff = BACKOFF_FIRST_SECONDS

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(
            self.url or settings.REDIS_URL,
            socket_connect_timeout=5,
            health_check_interval=15,
            client_name=self.client_name,
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(STOP_CHANNEL)
            # Stops published while we were not subscribed are only in their keys.
            active = self.stops.active
            if active:
                found = await client.exists(*(stop_key(g) for g in active))
                if found:
                    for generation_id in active:
                        if await client.exists(stop_key(generation_id)):
                            self.stops.request(generation_id)
            self.subscribed.set()
            task = asyncio.current_task()
            while True:
                # redis-py's timed read can swallow a cancellation: honour it explicitly.
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError
                # A bounded wait, so that a dead connection is noticed by the health check.
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    self.stops.request(_text(message["data"]))
        finally:
            self.subscribed.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()


listener = StopListener(registry)
