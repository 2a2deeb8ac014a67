"""A cached answer played back through the stream's engine interface.

The worker's stream (`inference.streaming.generation_stream`) takes anything with vLLM's
`generate(prompt, sampling_params, request_id, priority=...)` async iterator. Giving it this
instead of the engine serves a hit by the very path a generated answer takes: output
moderation, numbered deltas in the resume log, checkpoints, the stop flag, the stored message
and `generation.done`. The whole text comes as one output (the stream coalesces outputs into
deltas anyway), so the hit adds no token-rate samples to the engine's metrics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from inference.cache.store import CachedAnswer


@dataclass(frozen=True, slots=True)
class _Completion:
    text: str
    token_ids: range  # only its length is read: the answer's completion tokens
    finish_reason: str


@dataclass(frozen=True, slots=True)
class _Output:
    outputs: list[_Completion]
    finished: bool


class CachedEngine:
    """Plays one cached answer back as a finished engine output."""

    def __init__(self, answer: CachedAnswer) -> None:
        self.answer = answer

    async def generate(
        self, prompt: Any, sampling_params: Any, request_id: str, **_: Any
    ) -> AsyncIterator[_Output]:
        answer = self.answer
        completion = _Completion(
            text=answer.text,
            token_ids=range(answer.completion_tokens),
            finish_reason=answer.finish_reason,
        )
        yield _Output(outputs=[completion], finished=True)
