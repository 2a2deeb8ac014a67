"""Per-user limits of the chat protocol, kept in Redis so that they hold across Daphne processes.

- Messages per minute (moving window) and per day (the quota), counted by the `limits` library,
  whose Redis storage updates each window with one atomic script.
- Slots: concurrent generations (`chat.generation.slots`) and open websocket connections, one
  sorted set per user whose members are generation ids (or connection channel names) scored by
  their expiry time, changed only by one atomic script (`slot_acquire`). A process that dies
  without releasing its slot leaks it for at most the slot's lifetime.

Every key starts with the cache's key prefix (`CACHE_KEY_PREFIX`), so deployments (and test
runs) sharing one Redis never see each other's counters.
"""

from __future__ import annotations

import math
import time
from functools import cache
from typing import Any

from django.conf import settings
from limits import (
    RateLimitItem,
    RateLimitItemPerDay,
    RateLimitItemPerMinute,
    RateLimitItemPerSecond,
)
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from chat.errors import ChatError
from chat.redis_client import redis_client

# An open connection re-registers itself this often; its entry expires after three misses.
CONNECTION_REFRESH_SECONDS = 60
CONNECTION_TTL_SECONDS = 3 * CONNECTION_REFRESH_SECONDS

# KEYS[1]: the user's slot set. ARGV: member, limit, lifetime in seconds, member to replace.
# Drops expired members, then adds (or refreshes) `member` when it is already in the set or the
# set has room. Returns 1 when `member` holds a slot, else 0.
_SLOT_ACQUIRE = """
local now = redis.call('TIME')
local now_s = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_s)
if ARGV[4] ~= '' then
  redis.call('ZREM', KEYS[1], ARGV[4])
end
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
local lifetime = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now_s + lifetime, ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(lifetime) + 1)
return 1
"""


def key(*parts: object) -> str:
    """A Redis key under the deployment's cache key prefix (CACHE_KEY_PREFIX)."""
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "chat"
    return ":".join([prefix, "chat", *map(str, parts)])


@cache
def _storage() -> RedisStorage:
    # Shares the process's Redis connection pool with the stop flags.
    return RedisStorage(settings.REDIS_URL, connection_pool=redis_client().connection_pool)


def _retry_after(reset_time: float) -> int:
    # At least one second: a client told "retry after 0" would retry at once and be refused.
    return max(1, math.ceil(reset_time - time.time()))


def _hit(limiter_class: type, item: RateLimitItem, *identifiers: str) -> int | None:
    """Count one hit; None when it fits, else the seconds until it would."""
    limiter = limiter_class(_storage())
    if limiter.hit(item, *identifiers):
        return None
    return _retry_after(limiter.get_window_stats(item, *identifiers).reset_time)


# --- messages per minute and per day ------------------------------------------------------------


def _message_limits() -> list[tuple[str, type, RateLimitItem, str]]:
    """The configured limits on messages: (name, limiter class, item, namespace)."""
    limits: list[tuple[str, type, RateLimitItem, str]] = []
    if settings.CHAT_RATE_PER_MINUTE:
        minute = RateLimitItemPerMinute(settings.CHAT_RATE_PER_MINUTE)
        limits.append(("minute", MovingWindowRateLimiter, minute, key("rate", "minute")))
    if settings.CHAT_DAILY_MESSAGE_QUOTA:
        day = RateLimitItemPerDay(settings.CHAT_DAILY_MESSAGE_QUOTA)
        limits.append(("day", FixedWindowRateLimiter, day, key("quota", "day")))
    return limits


def message_rate_allows(*, owner_id: int) -> bool:
    """Whether one more message fits the per-minute limit and the day's quota now, without
    counting it: a cheap gate before work that a refused message should not cost (the
    consumer's input prefetch). `message_rate_hit` still decides."""
    storage = _storage()
    return all(
        limiter(storage).test(item, namespace, str(owner_id))
        for _, limiter, item, namespace in _message_limits()
    )


def message_rate_hit(*, owner_id: int) -> None:
    """Count one message that starts a generation; raise `rate_limited` or `quota_exceeded`.

    A message refused by the per-minute limit does not count against the day's quota.
    """
    for name, limiter, item, namespace in _message_limits():
        wait = _hit(limiter, item, namespace, str(owner_id))
        if wait is None:
            continue
        if name == "minute":
            raise ChatError(
                "rate_limited",
                f"At most {settings.CHAT_RATE_PER_MINUTE} messages per minute. "
                f"Try again in {wait} s.",
                retry_after=wait,
            )
        raise ChatError(
            "quota_exceeded",
            f"The daily quota of {settings.CHAT_DAILY_MESSAGE_QUOTA} messages is used up.",
            retry_after=wait,
        )


# --- frames: every client frame, per connection and per user -----------------------------------


@cache
def _memory_storage() -> MemoryStorage:
    # A connection lives in one process, so its own limit needs no Redis round trip.
    return MemoryStorage()


def frame_connection_hit(*, channel_name: str) -> int | None:
    """Count one frame of a connection (in this process's memory; cheap enough to run on the
    event loop). None when it fits, else the seconds until it would."""
    item = RateLimitItemPerSecond(settings.CHAT_FRAMES_PER_SECOND_PER_CONNECTION)
    limiter = MovingWindowRateLimiter(_memory_storage())
    if limiter.hit(item, "frames", channel_name):
        return None
    return _retry_after(limiter.get_window_stats(item, "frames", channel_name).reset_time)


def frame_connection_forget(*, channel_name: str) -> None:
    """Drop a closed connection's window now rather than when it expires."""
    MovingWindowRateLimiter(_memory_storage()).clear(
        RateLimitItemPerSecond(settings.CHAT_FRAMES_PER_SECOND_PER_CONNECTION),
        "frames",
        channel_name,
    )


def frame_user_hit(*, owner_id: int) -> int | None:
    """Count one frame of a user over all their connections and processes (Redis; call it
    in a thread). None when it fits, else the seconds until it would."""
    item = RateLimitItemPerMinute(settings.CHAT_FRAMES_PER_MINUTE_PER_USER)
    return _hit(MovingWindowRateLimiter, item, key("frames", "user"), str(owner_id))


def quota_left(*, owner_id: int) -> int | None:
    """Messages left in the user's current daily window; None when there is no quota."""
    per_day = settings.CHAT_DAILY_MESSAGE_QUOTA
    if not per_day:
        return None
    stats = FixedWindowRateLimiter(_storage()).get_window_stats(
        RateLimitItemPerDay(per_day), key("quota", "day"), str(owner_id)
    )
    return int(stats.remaining)


# --- slots: concurrent generations and open connections ----------------------------------------


@cache
def _slot_script() -> Any:
    return redis_client().register_script(_SLOT_ACQUIRE)


def slot_acquire(
    slots: str, *, member: str, limit: int, lifetime: float, replace: str = ""
) -> bool:
    return bool(_slot_script()(keys=[slots], args=[member, limit, lifetime, replace]))


def _connections_key(owner_id: int) -> str:
    return key("connections", owner_id)


def connection_register(*, owner_id: int, channel_name: str) -> bool:
    """Count an open websocket (or refresh it); False when the user has too many open."""
    return slot_acquire(
        _connections_key(owner_id),
        member=channel_name,
        limit=settings.CHAT_MAX_CONNECTIONS_PER_USER,
        lifetime=CONNECTION_TTL_SECONDS,
    )


def connection_unregister(*, owner_id: int, channel_name: str) -> None:
    redis_client().zrem(_connections_key(owner_id), channel_name)
