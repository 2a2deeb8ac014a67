"""Test doubles for the stream: an engine that yields scripted DELTA outputs on a fake clock,
a channel layer that records what was sent (and when), and the chat store's functions."""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


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
    requests: list[tuple[Any, Any, str]] = field(default_factory=list)

    async def generate(self, prompt: Any, params: Any, request_id: str) -> AsyncIterator[Any]:
        self.requests.append((prompt, params, request_id))
        for index, piece in enumerate(self.pieces):
            if self.fail_after is not None and index == self.fail_after:
                assert self.error is not None
                raise self.error
            await asyncio.sleep(0)  # the real engine awaits its output queue
            self.clock.now += self.step
            last = index == len(self.pieces) - 1
            completion = types.SimpleNamespace(
                text=piece,
                token_ids=[index],
                finish_reason=self.finish_reason if last else None,
            )
            yield types.SimpleNamespace(outputs=[completion], finished=last)


@dataclass
class RecordingLayer:
    clock: FakeClock
    sent: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.sent.append((self.clock.now, group, message))

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [message for _, _, message in self.sent if message["type"] == kind]


class FakeStore:
    """`chat.services` and `chat.selectors` as modules, backed by one dict per generation."""

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.conversations: dict[str, dict[str, Any]] = {}
        self.paths: dict[str, list[dict[str, Any]]] = {}
        self.checkpoints: list[dict[str, Any]] = []
        self.finishes: list[dict[str, Any]] = []
        self.services = types.ModuleType("chat.services")
        self.services.generation_checkpoint = self.generation_checkpoint  # type: ignore[attr-defined]
        self.services.generation_finish = self.generation_finish  # type: ignore[attr-defined]
        self.selectors = types.ModuleType("chat.selectors")
        self.selectors.message_by_generation = self.message_by_generation  # type: ignore[attr-defined]
        self.selectors.message_path = self.message_path  # type: ignore[attr-defined]
        self.selectors.conversation_get = self.conversation_get  # type: ignore[attr-defined]

    def generation_checkpoint(
        self, *, generation_id: str, owner_id: int, text: str, seq: int
    ) -> None:
        self.checkpoints.append({"generation_id": generation_id, "text": text, "seq": seq})

    def generation_finish(self, **fields: Any) -> dict[str, Any] | None:
        message = self.messages.get(fields["generation_id"], {})
        if message.get("state") in {"complete", "stopped", "failed", "interrupted"}:
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
