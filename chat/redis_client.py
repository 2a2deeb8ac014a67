"""The process's Redis client for chat's own keys (limits, generation signals)."""

from __future__ import annotations

from functools import cache
from typing import Any

import redis
from django.conf import settings


@cache
def redis_client() -> redis.Redis:
    """One client (and connection pool) per process; redis-py pools are thread-safe."""
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry_on_timeout=True,
    )


def as_text(raw: Any) -> str:
    """A Redis reply as text (redis-py returns bytes; its type hints admit more)."""
    return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
