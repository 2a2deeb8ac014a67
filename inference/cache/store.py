"""Cached answers in Redis, each under its exact key with the deployment's TTL."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass

from chat.redis_client import redis_client

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A finished answer, as the engine wrote it and the user received it."""

    text: str
    finish_reason: str  # stop | length
    prompt_tokens: int
    completion_tokens: int
    generation_id: str  # the generation that wrote it
    created_at: float

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def answer_get(key: str) -> CachedAnswer | None:
    """The entry under `key`, or None (absent, expired, unreadable)."""
    raw = redis_client().get(key)
    if raw is None:
        return None
    try:
        return CachedAnswer(**json.loads(raw))
    except (TypeError, ValueError):
        logger.warning("dropping an unreadable cache entry %s", key)
        answer_delete(key)
        return None


def answer_put(key: str, answer: CachedAnswer, *, ttl_seconds: int) -> None:
    redis_client().set(key, json.dumps(asdict(answer)), ex=ttl_seconds)


def answer_delete(key: str) -> None:
    redis_client().delete(key)


def now() -> float:
    return time.time()
