"""The queue of generations waiting for a worker, one sorted set per model queue in Redis.

Admission adds a generation and reads the depth, the worker takes it out when it starts, its
ending takes it out when it never started, and a resuming client reads its position. The two
that every chat.send makes (`depth`, `add`) are one round trip each: a script, so that a
burst's admissions wait on Redis as little as they can.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from chat.generation.names import (
    running_key,
    waiting_arrivals_key,
    waiting_key,
    waiting_since_key,
)
from chat.redis_client import as_text, redis_client

# KEYS: arrivals counter, waiting, since; ARGV: generation id, priority base, now. Arrival
# order comes from a counter, not the clock: two sends in the same millisecond must not tie (a
# float score of -priority * 1e12 + time() has only millisecond resolution left). Scores stay
# below 2**44, exact in a Lua number. The arrival times are kept on their own, so that entries
# nobody removed (a task lost with its worker) can be dropped by age: see `depth`.
_ADD = """
local arrival = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]) + arrival, ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return arrival
"""

# KEYS: waiting, since; ARGV: the arrival time before which an entry is stale ('' : none).
# The stale are removed in chunks (Lua's unpack has a bounded stack).
_DEPTH = """
if ARGV[1] ~= '' then
  local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
  for first = 1, #stale, 1000 do
    local chunk = {unpack(stale, first, math.min(first + 999, #stale))}
    redis.call('ZREM', KEYS[1], unpack(chunk))
    redis.call('ZREM', KEYS[2], unpack(chunk))
  end
end
return redis.call('ZCARD', KEYS[1])
"""


@cache
def _script(source: str) -> Any:
    return redis_client().register_script(source)


def add(*, queue: str, generation_id: str, priority: int) -> None:
    """Record a generation as waiting. Higher priority sorts first, then arrival order."""
    _script(_ADD)(
        keys=[waiting_arrivals_key(queue), waiting_key(queue), waiting_since_key(queue)],
        args=[generation_id, (9 - priority) * 2**40, time.time()],
    )


def remove(*, queue: str, generation_id: str) -> None:
    """Take a generation out of the queue and out of the running set: it ended."""
    pipeline = redis_client().pipeline()
    pipeline.zrem(waiting_key(queue), generation_id)
    pipeline.zrem(waiting_since_key(queue), generation_id)
    pipeline.zrem(running_key(queue), generation_id)
    pipeline.execute()


def start(*, queue: str, generation_id: str) -> None:
    """A worker started the generation: out of the waiting queue, into the running set (the
    router's running count, `load`), until `remove` at its end."""
    pipeline = redis_client().pipeline()
    pipeline.zrem(waiting_key(queue), generation_id)
    pipeline.zrem(waiting_since_key(queue), generation_id)
    pipeline.zadd(running_key(queue), {generation_id: time.time()})
    pipeline.execute()


def load(*, queues: list[str], stale_after: float) -> dict[str, tuple[int, int]]:
    """(waiting, running) of each queue, read now in one round trip. Entries older than
    `stale_after` seconds are not counted (no generation waits or runs that long; a worker
    that died leaves them behind until the reaper ends their generations)."""
    if not queues:
        return {}
    since = time.time() - stale_after
    pipeline = redis_client().pipeline()
    for queue in queues:
        pipeline.zcount(waiting_since_key(queue), since, "+inf")
        pipeline.zcount(running_key(queue), since, "+inf")
    counts = pipeline.execute()
    return {queue: (int(counts[2 * i]), int(counts[2 * i + 1])) for i, queue in enumerate(queues)}


def position(*, queue: str, generation_id: str) -> int | None:
    """1-based place among waiting generations, or None when it is not waiting."""
    rank = redis_client().zrank(waiting_key(queue), generation_id)
    return None if rank is None else int(rank) + 1  # type: ignore[arg-type]


def depth(*, queue: str, stale_after: float | None = None) -> int:
    """How many generations wait on `queue`, first forgetting those waiting longer than
    `stale_after` seconds (no healthy queue holds a message that long)."""
    cutoff = "" if stale_after is None else repr(time.time() - stale_after)
    return int(_script(_DEPTH)(keys=[waiting_key(queue), waiting_since_key(queue)], args=[cutoff]))


def first(*, queue: str, count: int) -> list[str]:
    """The next `count` generations to start, first first."""
    return [as_text(member) for member in redis_client().zrange(waiting_key(queue), 0, count - 1)]


def positions(*, entries: list[tuple[str, str]]) -> list[int | None]:
    """`position` of many (queue, generation_id) pairs in one round trip."""
    if not entries:
        return []
    pipeline = redis_client().pipeline()
    for queue, generation_id in entries:
        pipeline.zrank(waiting_key(queue), generation_id)
    return [None if rank is None else int(rank) + 1 for rank in pipeline.execute()]


def depths(*, queues: list[str]) -> dict[str, int]:
    """How many generations wait on each queue (no clean-up: a read for the staff console)."""
    pipeline = redis_client().pipeline()
    for queue in queues:
        pipeline.zcard(waiting_key(queue))
    return {queue: int(count) for queue, count in zip(queues, pipeline.execute(), strict=True)}
