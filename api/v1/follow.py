"""Following one generation over the channel layer, the way the websocket consumer does.

The follower joins the generation's group `gen.<id>` before the generation is admitted, so
nothing the worker publishes goes unheard, and turns what arrives into the answer's text in
order: a repeated delta is dropped by its `seq`; a gap (a later delta, or a `generation.progress`
ahead of what was relayed) is filled from the worker's delta log; a silence of
`STALL_SECONDS` reads the generation's state from the store, as a resuming client would
(`chat.generation.replay`); and the closing message, which carries the whole text, settles
anything still missing. Pub/sub delivery is at most once: none of this relies on it alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async

from chat.events import generation_group
from chat.generation import deltas
from chat.generation.replay import replay

logger = logging.getLogger(__name__)

STALL_SECONDS = 10.0


@dataclass(slots=True)
class Ending:
    """How the followed generation ended: its closing protocol message, and why output
    moderation cut it (when it did)."""

    closing: dict[str, Any]
    blocked: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return self.closing["type"] == "generation.error"


@dataclass(slots=True)
class Follower:
    layer: Any
    owner_id: int
    generation_id: str
    seq: int = 0
    text: list[str] = field(default_factory=list)
    ending: Ending | None = None
    _channel: str = ""
    _inbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    _reader: asyncio.Task[None] | None = None
    _blocked: dict[str, Any] | None = None

    async def start(self) -> None:
        self._channel = await self.layer.new_channel()
        await self.layer.group_add(generation_group(self.generation_id), self._channel)
        # One reader for the channel's lifetime: a receive() cancelled by a timeout would
        # unsubscribe the channel (channels_redis' pub/sub layer) and lose what comes next.
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while True:
            self._inbox.put_nowait(await self.layer.receive(self._channel))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
            self._reader = None
        with contextlib.suppress(Exception):  # the group expires anyway
            await self.layer.group_discard(generation_group(self.generation_id), self._channel)

    async def deltas(self) -> AsyncIterator[str]:
        """The answer's text as it comes, in order, until the generation ends (`ending`)."""
        while self.ending is None:
            try:
                event = await asyncio.wait_for(self._inbox.get(), timeout=STALL_SECONDS)
            except TimeoutError:
                for piece in await self._resume():
                    yield piece
                continue
            for piece in await self._handle(event):
                yield piece

    async def _handle(self, event: dict[str, Any]) -> list[str]:
        kind = event.get("type")
        if event.get("generation_id") != self.generation_id:
            return []
        if kind == "generation.delta":
            pieces = []
            if event["seq"] > self.seq + 1:
                pieces += await self._catch_up()
            if event["seq"] > self.seq:
                self.seq = event["seq"]
                pieces.append(event["text"])
            return self._took(pieces)
        if kind == "generation.progress" and event["seq"] > self.seq:
            return self._took(await self._catch_up())
        if kind == "moderation.blocked":
            self._blocked = event
            return []
        if kind in ("generation.done", "generation.error"):
            return self._end(event)
        return []  # generation.queued, a progress already relayed

    def _took(self, pieces: list[str]) -> list[str]:
        self.text.extend(pieces)
        return pieces

    def _end(self, closing: dict[str, Any]) -> list[str]:
        """The closing message carries the whole text: whatever never arrived comes from it."""
        self.ending = Ending(closing=closing, blocked=self._blocked)
        relayed = "".join(self.text)
        final = closing.get("text") or ""
        if len(final) > len(relayed) and final.startswith(relayed):
            return self._took([final[len(relayed) :]])
        if not final.startswith(relayed):
            logger.warning("generation %s: relayed text is not its final text", self.generation_id)
        return []

    async def _catch_up(self) -> list[str]:
        missed = await sync_to_async(deltas.after, thread_sensitive=False)(
            generation_id=self.generation_id, after_seq=self.seq
        )
        pieces = []
        for seq, text in missed or ():
            if seq == self.seq + 1:
                self.seq = seq
                pieces.append(text)
        return pieces

    async def _resume(self) -> list[str]:
        """A silence: what the store and the delta log say, as a resuming client reads it."""
        try:
            messages, _ = await sync_to_async(replay, thread_sensitive=False)(
                owner_id=self.owner_id, generation_id=self.generation_id, after_seq=self.seq
            )
        except Exception as error:  # the next silence tries again
            logger.warning("could not read generation %s: %r", self.generation_id, error)
            return []
        pieces: list[str] = []
        for message in messages:
            event = message.model_dump(mode="json")
            if event["type"] == "generation.delta" and event["seq"] > self.seq:
                # One delta for everything after self.seq (replay joins them).
                self.seq = event["seq"]
                pieces += self._took([event["text"]])
            elif event["type"] in ("generation.done", "generation.error"):
                pieces += self._end(event)
        return pieces
