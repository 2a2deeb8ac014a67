"""The recent-delta log, for resuming without a gap.

The store's checkpoint is about a second old; a client resuming from a later `seq` would miss
what was published in between. The worker records each delta here before publishing it, so a
consumer that joined the group and then reads this log has every delta: older ones from the
log, newer ones live.
"""

from __future__ import annotations

from typing import Any

from chat.generation.names import delta_log_key
from chat.redis_client import as_text, redis_client

DELTA_LOG_TTL_SECONDS = 3600


def record(*, generation_id: str, seq: int, text: str) -> None:
    """Record delta `seq` of a generation (call before publishing it)."""
    key = delta_log_key(generation_id)
    pipeline = redis_client().pipeline(transaction=False)
    pipeline.rpush(key, f"{seq}:{text}")
    pipeline.expire(key, DELTA_LOG_TTL_SECONDS)
    pipeline.execute()


async def record_async(client: Any, *, generation_id: str, seq: int, text: str) -> None:
    """The same, on an asyncio Redis client (`redis.asyncio.Redis`) of the caller's loop."""
    key = delta_log_key(generation_id)
    async with client.pipeline(transaction=False) as pipeline:
        pipeline.rpush(key, f"{seq}:{text}")
        pipeline.expire(key, DELTA_LOG_TTL_SECONDS)
        await pipeline.execute()


def after(*, generation_id: str, after_seq: int) -> list[tuple[int, str]] | None:
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


def joined_after(*, generation_id: str, after_seq: int) -> tuple[str, int] | None:
    """The text of the recorded deltas after `after_seq` and the last seq, or None when the
    log does not reach back to `after_seq` (not recorded, or expired)."""
    newer = after(generation_id=generation_id, after_seq=after_seq)
    if newer is None:
        return None
    if not newer:
        return "", after_seq
    return "".join(text for _, text in newer), newer[-1][0]
