"""Cross-process signals about generations, kept in Redis so that every web and worker process
sees them: stop requests, and the queue of generations waiting for a worker.

The stop request is both a key (for a worker that starts the generation later, or that missed
the broadcast) and a pub/sub message (so a running worker reacts at its next flush without
polling Redis per token).
"""

from __future__ import annotations

import time
from functools import cache

import redis
from django.conf import settings

STOP_CHANNEL = "chat:stop"
STOP_TTL_SECONDS = 6 * 3600


def stop_key(generation_id: str) -> str:
    return f"chat:stop:{generation_id}"


def queue_key(queue: str) -> str:
    return f"chat:waiting:{queue}"


def queue_since_key(queue: str) -> str:
    return f"chat:waiting-since:{queue}"


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


def generation_stop_request(*, generation_id: str) -> None:
    client = redis_client()
    client.set(stop_key(generation_id), b"1", ex=STOP_TTL_SECONDS)
    client.publish(STOP_CHANNEL, generation_id)


def generation_stop_requested(*, generation_id: str) -> bool:
    return bool(redis_client().exists(stop_key(generation_id)))


def waiting_add(*, queue: str, generation_id: str, priority: int) -> None:
    """Record a generation as waiting. Higher priority sorts first, then arrival order."""
    now = time.time()
    pipeline = redis_client().pipeline()
    pipeline.zadd(queue_key(queue), {generation_id: -priority * 1e12 + now})
    # Arrival times on their own, so that entries nobody removed (a task lost with its
    # worker) can be dropped by age: see `waiting_depth`.
    pipeline.zadd(queue_since_key(queue), {generation_id: now})
    pipeline.execute()


def waiting_remove(*, queue: str, generation_id: str) -> None:
    """The worker calls this when it starts (or drops) the generation."""
    pipeline = redis_client().pipeline()
    pipeline.zrem(queue_key(queue), generation_id)
    pipeline.zrem(queue_since_key(queue), generation_id)
    pipeline.execute()


def waiting_position(*, queue: str, generation_id: str) -> int | None:
    """1-based place among waiting generations, or None when it is not waiting."""
    rank = redis_client().zrank(queue_key(queue), generation_id)
    return None if rank is None else int(rank) + 1


def waiting_depth(*, queue: str, stale_after: float | None = None) -> int:
    """How many generations wait on `queue`, first forgetting those waiting longer than
    `stale_after` seconds (no healthy queue holds a message that long)."""
    client = redis_client()
    if stale_after is not None:
        since = queue_since_key(queue)
        stale = client.zrangebyscore(since, "-inf", time.time() - stale_after)
        if stale:
            pipeline = client.pipeline()
            pipeline.zrem(queue_key(queue), *stale)
            pipeline.zrem(since, *stale)
            pipeline.execute()
    return int(client.zcard(queue_key(queue)))


def waiting_first(*, queue: str, count: int) -> list[str]:
    return [member.decode() for member in redis_client().zrange(queue_key(queue), 0, count - 1)]
