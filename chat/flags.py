"""Cross-process signals about generations, kept in Redis so that every web and worker process
sees them: stop requests, and the queue of generations waiting for a worker.

The stop request is both a key (for a worker that starts the generation later, or that missed
the broadcast) and a pub/sub message (so a running worker reacts at its next flush without
polling Redis per token).
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

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


def as_text(raw: Any) -> str:
    """A Redis reply as text (redis-py returns bytes; its type hints admit more)."""
    return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)


def generation_stop_request(*, generation_id: str) -> None:
    client = redis_client()
    client.set(stop_key(generation_id), b"1", ex=STOP_TTL_SECONDS)
    client.publish(STOP_CHANNEL, generation_id)


def generation_stop_requested(*, generation_id: str) -> bool:
    return bool(redis_client().exists(stop_key(generation_id)))


def queue_arrival_key(queue: str) -> str:
    return f"chat:waiting-arrivals:{queue}"


def waiting_add(*, queue: str, generation_id: str, priority: int) -> None:
    """Record a generation as waiting. Higher priority sorts first, then arrival order."""
    now = time.time()
    client = redis_client()
    # Arrival order from a counter, not the clock: two sends in the same millisecond must not
    # tie (a float score of -priority * 1e12 + time() has only millisecond resolution left).
    arrival = int(client.incr(queue_arrival_key(queue)))
    pipeline = client.pipeline()
    pipeline.zadd(queue_key(queue), {generation_id: (9 - priority) * 2**40 + arrival})
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
    return None if rank is None else int(rank) + 1  # type: ignore[arg-type]


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
    return [as_text(member) for member in redis_client().zrange(queue_key(queue), 0, count - 1)]


# --- recent deltas, for resuming without a gap ----------------------------------------------------
#
# The store's checkpoint is about a second old; a client resuming from a later `seq` would miss
# what was published in between. The worker records each delta here before publishing it, so
# a consumer that joined the group and then reads this log has every delta: older ones from
# the log, newer ones live.

DELTA_LOG_TTL_SECONDS = 3600


def delta_log_key(generation_id: str) -> str:
    return f"chat:deltas:{generation_id}"


def generation_delta_record(*, generation_id: str, seq: int, text: str) -> None:
    """Record delta `seq` of a generation (call before publishing it)."""
    key = delta_log_key(generation_id)
    pipeline = redis_client().pipeline(transaction=False)
    pipeline.rpush(key, f"{seq}:{text}")
    pipeline.expire(key, DELTA_LOG_TTL_SECONDS)
    pipeline.execute()


async def generation_delta_record_async(
    client: Any, *, generation_id: str, seq: int, text: str
) -> None:
    """The same, on an asyncio Redis client (`redis.asyncio.Redis`) of the caller's loop."""
    key = delta_log_key(generation_id)
    async with client.pipeline(transaction=False) as pipeline:
        pipeline.rpush(key, f"{seq}:{text}")
        pipeline.expire(key, DELTA_LOG_TTL_SECONDS)
        await pipeline.execute()


def generation_deltas_after(*, generation_id: str, after_seq: int) -> list[tuple[int, str]] | None:
    """The recorded deltas after `after_seq` as (seq, text), oldest first, or None when the log
    does not reach back to `after_seq` (not recorded, or expired)."""
    entries = redis_client().lrange(delta_log_key(generation_id), 0, -1)
    if not entries:
        return None
    parsed = []
    for raw in entries:
        seq, _, text = as_text(raw).partition(":")
        parsed.append((int(seq), text))
    if parsed[0][0] > after_seq + 1:
        return None  # a gap between what the client has and what the log holds
    return [(seq, text) for seq, text in parsed if seq > after_seq]


def generation_deltas_since(*, generation_id: str, after_seq: int) -> tuple[str, int] | None:
    """The text of the recorded deltas after `after_seq` and the last seq, or None when the
    log does not reach back to `after_seq` (not recorded, or expired)."""
    newer = generation_deltas_after(generation_id=generation_id, after_seq=after_seq)
    if newer is None:
        return None
    if not newer:
        return "", after_seq
    return "".join(text for _, text in newer), newer[-1][0]
