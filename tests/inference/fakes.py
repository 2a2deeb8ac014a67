"""Test doubles for the stream: an engine that yields scripted DELTA outputs on a fake clock,
a channel layer that records what was sent (and when), the chat store's functions, and output
moderators (pass-through, and one that holds text until a sentence ends)."""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from chat.generation.record import ERROR_STATES, FINAL_STATES, Ending


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeEngine:
    """Yields one output per scripted piece; each piece advances the clock by `step` seconds."""

    pieces: list[str]
    clock: FakeClock
    step: float = 0.01
    finish_reason: str = "stop"
    fail_after: int | None = None
    error: BaseException | None = None
    stall_after: int | None = None  # then no output at all (a long prefill, a full batch)
    delay: float = 0.0  # real seconds per output (for tests of the keeper's timing)
    requests: list[tuple[Any, Any, str]] = field(default_factory=list)
    priorities: list[int] = field(default_factory=list)
    running: set[str] = field(default_factory=set)
    aborted: list[str] = field(default_factory=list)
    yielded: int = 0

    async def generate(
        self, prompt: Any, params: Any, request_id: str, *, priority: int = 0
    ) -> AsyncIterator[Any]:
        self.requests.append((prompt, params, request_id))
        self.priorities.append(priority)
        self.running.add(request_id)
        finished = False
        try:
            for index, piece in enumerate(self.pieces):
                if self.fail_after is not None and index == self.fail_after:
                    assert self.error is not None
                    raise self.error
                if self.stall_after is not None and index == self.stall_after:
                    await asyncio.Event().wait()
                await asyncio.sleep(self.delay)  # the real engine awaits its output queue
                self.clock.now += self.step
                last = index == len(self.pieces) - 1
                completion = types.SimpleNamespace(
                    text=piece,
                    token_ids=[index],
                    finish_reason=self.finish_reason if last else None,
                )
                self.yielded += 1
                yield types.SimpleNamespace(outputs=[completion], finished=last)
            finished = True
        finally:
            # Like AsyncLLM: leaving early (close, cancel) aborts the request.
            self.running.discard(request_id)
            if not finished:
                self.aborted.append(request_id)


@dataclass
class RecordingLayer:
    clock: FakeClock
    sent: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.sent.append((self.clock.now, group, message))

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [message for _, _, message in self.sent if message["type"] == kind]


class PassThroughModerator:
    """Releases everything at once (moderation is not under test)."""

    blocked = False
    categories: list[str] = []
    message = ""

    def __init__(self) -> None:
        self.released: list[str] = []

    @property
    def released_text(self) -> str:
        return "".join(self.released)

    async def afeed(self, delta: str) -> str:
        self.released.append(delta)
        return delta

    async def afinish(self) -> str:
        return ""


class SentenceModerator:
    """Holds text until a sentence ends ("." + space), then checks it: a window that contains
    `banned` blocks the stream for good. Counts calls, to show the cost is per flush."""

    def __init__(self, banned: str | None = None) -> None:
        self.banned = banned
        self.blocked = False
        self.categories: list[str] = []
        self.message = ""
        self.pending = ""
        self.released: list[str] = []
        self.calls = 0

    @property
    def released_text(self) -> str:
        return "".join(self.released)

    def _window(self, text: str) -> str:
        if self.banned and self.banned in text:
            self.blocked = True
            self.categories = ["test"]
            self.message = "This answer was stopped."
            self.pending = ""
            return ""
        self.released.append(text)
        return text

    async def afeed(self, delta: str) -> str:
        self.calls += 1
        if self.blocked:
            return ""
        self.pending += delta
        cut = self.pending.rfind(". ")
        if cut < 0:
            return ""
        window, self.pending = self.pending[: cut + 2], self.pending[cut + 2 :]
        return self._window(window)

    async def afinish(self) -> str:
        if self.blocked or not self.pending:
            return ""
        window, self.pending = self.pending, ""
        return self._window(window)


class FakeStore:
    """The generation's store writes (`chat.generation.lifecycle`) and `chat.selectors` as a
    module, backed by one dict per generation."""

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.conversations: dict[str, dict[str, Any]] = {}
        self.paths: dict[str, list[dict[str, Any]]] = {}
        self.checkpoints: list[dict[str, Any]] = []
        self.finishes: list[dict[str, Any]] = []
        self.selectors = types.ModuleType("chat.selectors")
        self.selectors.message_by_generation = self.message_by_generation  # type: ignore[attr-defined]
        self.selectors.message_path = self.message_path  # type: ignore[attr-defined]
        self.selectors.conversation_get = self.conversation_get  # type: ignore[attr-defined]

    def generation_checkpoint(
        self,
        *,
        generation_id: str,
        owner_id: int,
        text: str,
        seq: int,
        seq_offsets: list[int] | None = None,
        usage: dict[str, int] | None = None,
        worker: str | None = None,
    ) -> None:
        self.checkpoints.append(
            {
                "generation_id": generation_id,
                "text": text,
                "seq": seq,
                "seq_offsets": seq_offsets,
                "usage": usage,
                "worker": worker,
            }
        )

    def generation_finish(self, ending: Ending) -> dict[str, Any] | None:
        """`lifecycle.finish`: records the final write's fields as the store would keep them."""
        fields = {
            "generation_id": ending.generation_id,
            "owner_id": ending.owner_id,
            "text": ending.text,
            "state": ending.state,
            "finish_reason": ending.finish_reason,
            "usage": dict(ending.usage),
            "seq": ending.seq,
            "seq_offsets": ending.seq_offsets,
            "error": ending.error_message if ending.state in ERROR_STATES else None,
            "error_code": ending.error_code,
            "moderation": (
                {"categories": ending.categories, "message": ending.moderation_message}
                if ending.state == "moderated"
                else None
            ),
        }
        message = self.messages.setdefault(fields["generation_id"], {})
        if message.get("state") in FINAL_STATES:
            return None
        self.finishes.append(fields)
        message.update(state=fields["state"], content=fields["text"])
        return message

    def message_by_generation(self, *, generation_id: str, owner_id: int) -> dict[str, Any] | None:
        message = self.messages.get(generation_id)
        return message if message and message["owner_id"] == owner_id else None

    def message_path(self, *, message_id: str, owner_id: int) -> list[dict[str, Any]]:
        return self.paths.get(message_id, [])

    def conversation_get(self, *, conversation_id: str, owner_id: int) -> dict[str, Any] | None:
        return self.conversations.get(conversation_id)
