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

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
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
from redis import asyncio as aioredis

from chat.errors import ChatError
from chat.redis_client import redis_client
from config import metrics

logger = logging.getLogger(__name__)

# A process renews its open connections' entries this often; an entry expires after three
# misses, so the connections of a process that died stop counting within CONNECTION_TTL_SECONDS.
CONNECTION_REFRESH_SECONDS = 60
CONNECTION_TTL_SECONDS = 3 * CONNECTION_REFRESH_SECONDS
# The renewal goes round in this many parts, one every CONNECTION_REFRESH_SECONDS / parts, so
# that 10,000 connections make 12 small round trips a minute rather than one large one.
CONNECTION_RENEW_PARTS = 12
# A slot given back while Redis is away is retried this often at most.
CONNECTION_RETRY_SECONDS = 5
# Slot commands per pipelined round trip at most: a close of 10,000 connections at once is
# released in one or two (10,000 ZREM keep Redis busy for about 5 ms).
CONNECTION_COMMAND_BATCH = 10_000

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


def _message_limits(
    per_minute: int | None = None, per_day: int | None = None
) -> list[tuple[str, type, RateLimitItem, str]]:
    """The limits on messages: (name, limiter class, item, namespace). `per_minute` and
    `per_day` are the user's plan's (accounts.plans); None: the settings'. 0: no limit."""
    per_minute = settings.CHAT_RATE_PER_MINUTE if per_minute is None else per_minute
    per_day = settings.CHAT_DAILY_MESSAGE_QUOTA if per_day is None else per_day
    limits: list[tuple[str, type, RateLimitItem, str]] = []
    if per_minute:
        minute = RateLimitItemPerMinute(per_minute)
        limits.append(("minute", MovingWindowRateLimiter, minute, key("rate", "minute")))
    if per_day:
        day = RateLimitItemPerDay(per_day)
        limits.append(("day", FixedWindowRateLimiter, day, key("quota", "day")))
    return limits


def message_rate_allows(
    *, owner_id: int, per_minute: int | None = None, per_day: int | None = None
) -> bool:
    """Whether one more message fits the per-minute limit and the day's quota now, without
    counting it: a cheap gate before work that a refused message should not cost (the
    consumer's input prefetch). `message_rate_hit` still decides."""
    storage = _storage()
    return all(
        limiter(storage).test(item, namespace, str(owner_id))
        for _, limiter, item, namespace in _message_limits(per_minute, per_day)
    )


@contextlib.asynccontextmanager
async def input_prefetched_within_rate(owner_id: int, *texts: str) -> AsyncIterator[None]:
    """`moderation.prefetch.input_prefetched(*texts)` (their embeddings computed ahead of the
    admission thread, batched with other users') and `accounts.plans.plans_prefetched` (the
    owner's plan read likewise), but only for an owner whose next message the rate still
    admits: a flood of refused messages or requests must stay cheap. The
    websocket's `chat.send` and the API's completions both come through here."""
    from asgiref.sync import sync_to_async

    from accounts.plans import plans_prefetched
    from moderation.prefetch import input_prefetched

    allowed = await sync_to_async(message_rate_allows, thread_sensitive=False)(owner_id=owner_id)
    if not allowed:
        yield
        return
    async with input_prefetched(*texts), plans_prefetched(owner_id):
        yield


def message_rate_hit(
    *, owner_id: int, per_minute: int | None = None, per_day: int | None = None
) -> None:
    """Count one message that starts a generation; raise `rate_limited` or `quota_exceeded`.
    `per_minute` and `per_day` are the user's plan's; None: the settings'.

    A message refused by the per-minute limit does not count against the day's quota.
    """
    for name, limiter, item, namespace in _message_limits(per_minute, per_day):
        wait = _hit(limiter, item, namespace, str(owner_id))
        if wait is None:
            continue
        metrics.rate_limit_refused(name)
        if name == "minute":
            raise ChatError(
                "rate_limited",
                f"At most {item.amount} messages per minute. Try again in {wait} s.",
                retry_after=wait,
            )
        raise ChatError(
            "quota_exceeded",
            f"The daily quota of {item.amount} messages is used up.",
            retry_after=wait,
        )


def messages_left(
    *, owner_id: int, per_minute: int | None = None, per_day: int | None = None
) -> dict[str, int | None]:
    """Messages left now in the user's minute and day windows; None where there is no limit."""
    left: dict[str, int | None] = {"minute": None, "day": None}
    for name, limiter, item, namespace in _message_limits(per_minute, per_day):
        stats = limiter(_storage()).get_window_stats(item, namespace, str(owner_id))
        left[name] = int(stats.remaining)
    return left


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
    metrics.rate_limit_refused("frames")
    return _retry_after(limiter.get_window_stats(item, "frames", channel_name).reset_time)


def frame_refusal_closes(*, channel_name: str) -> bool:
    """Count one refused frame of a connection; True when it is the
    `CHAT_FLOOD_CLOSE_AFTER_REFUSALS`th within a minute: the client keeps flooding, close it.
    Counted in a window rather than in a row: a sustained flood faster than the limit gets
    a frame in each time one slides out of the window, and would never be refused 50 in a row."""
    item = _flood_item()
    limiter = MovingWindowRateLimiter(_memory_storage())
    limiter.hit(item, "refusals", channel_name)
    return limiter.get_window_stats(item, "refusals", channel_name).remaining <= 0


def _flood_item() -> RateLimitItem:
    return RateLimitItemPerMinute(settings.CHAT_FLOOD_CLOSE_AFTER_REFUSALS)


def frame_connection_forget(*, channel_name: str) -> None:
    """Drop a closed connection's windows now rather than when they expire."""
    limiter = MovingWindowRateLimiter(_memory_storage())
    limiter.clear(
        RateLimitItemPerSecond(settings.CHAT_FRAMES_PER_SECOND_PER_CONNECTION),
        "frames",
        channel_name,
    )
    limiter.clear(_flood_item(), "refusals", channel_name)


def connect_refused(*, credential: str | None, address: str | None) -> int | None:
    """Count one websocket handshake, before anything authenticates it, against this
    process's connection rates: per presented credential (a token or a session,
    `CHAT_CONNECTS_PER_MINUTE_PER_CREDENTIAL`), and the failed handshakes of its client
    address (`CHAT_FAILED_CONNECTS_PER_MINUTE_PER_ADDRESS`, counted by `connect_failed`).
    In memory, cheap enough for the event loop: what it protects is this process's threads,
    which authenticate handshakes. None when it may go on, else the seconds until it may."""
    limiter = MovingWindowRateLimiter(_memory_storage())
    # The address first: a refused address adds no window per (possibly random) credential.
    failures = _connect_failures_item()
    if (
        address is not None
        and failures is not None
        and not limiter.test(failures, "connect-failures", address)
    ):
        metrics.rate_limit_refused("connects")
        stats = limiter.get_window_stats(failures, "connect-failures", address)
        return _retry_after(stats.reset_time)
    per_credential = settings.CHAT_CONNECTS_PER_MINUTE_PER_CREDENTIAL
    if credential is not None and per_credential:
        item = RateLimitItemPerMinute(per_credential)
        if not limiter.hit(item, "connects", credential):
            metrics.rate_limit_refused("connects")
            return _retry_after(limiter.get_window_stats(item, "connects", credential).reset_time)
    return None


def connect_failed(*, address: str | None) -> None:
    """Count a handshake of `address` that did not authenticate (no credential, a wrong or
    revoked one): past the limit, the address's next handshakes are refused unread."""
    failures = _connect_failures_item()
    if address is not None and failures is not None:
        MovingWindowRateLimiter(_memory_storage()).hit(failures, "connect-failures", address)


def _connect_failures_item() -> RateLimitItem | None:
    per_minute = settings.CHAT_FAILED_CONNECTS_PER_MINUTE_PER_ADDRESS
    return RateLimitItemPerMinute(per_minute) if per_minute else None


def frame_user_hit(*, owner_id: int) -> int | None:
    """Count one frame of a user over all their connections and processes (Redis; call it
    in a thread). None when it fits, else the seconds until it would."""
    item = RateLimitItemPerMinute(settings.CHAT_FRAMES_PER_MINUTE_PER_USER)
    wait = _hit(MovingWindowRateLimiter, item, key("frames", "user"), str(owner_id))
    if wait is not None:
        metrics.rate_limit_refused("frames")
    return wait


def quota_left(*, owner_id: int, per_day: int | None = None) -> int | None:
    """Messages left in the user's current daily window; None when there is no quota.
    `per_day`: the user's plan's quota; None: CHAT_DAILY_MESSAGE_QUOTA."""
    return messages_left(owner_id=owner_id, per_minute=0, per_day=per_day)["day"]


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


# --- open websockets of this process, on its event loop -----------------------------------------
#
# The consumer takes and gives back its connection's slot on the event loop, with no thread hop
# (a hop costs more CPU than the Redis call itself). Every slot command of the process goes
# through one writer task that sends whatever has queued up as one pipelined round trip: a storm
# of connections or closes costs a few round trips, not one each, and never waits for a pool
# connection (redis-py's asyncio pool raises MaxConnectionsError past its size). One renewal
# task per process renews every slot the process holds, through the same writer, rather than a
# task, a thread hop and a round trip per connection every minute (10,000 connections: 167 of
# each a second). The writer runs commands in the order they were asked for, so a slot given
# back after a renewal was queued is not renewed back. Measured in docs/benchmarks.md, "Idle
# websockets per Daphne process".


@dataclass
class _Connections:
    """One event loop's (a web process's) open connections and its Redis client for them."""

    redis: aioredis.Redis
    # Channel name -> the slot set it holds a place in (its user's, under the key prefix of
    # the moment it was taken), and the part of the renewal that renews it.
    held: dict[str, tuple[str, int]] = field(default_factory=dict)
    opened: Iterator[int] = field(default_factory=itertools.count)
    renewer: asyncio.Task[None] | None = None
    # Commands waiting for the writer, each with the future of its reply.
    queued: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = field(default_factory=list)
    writer: asyncio.Task[None] | None = None
    # Releases that run after their caller is gone (a cancelled consumer, a Redis error).
    releases: set[asyncio.Task[None]] = field(default_factory=set)


_loops: dict[asyncio.AbstractEventLoop, _Connections] = {}


def _connections() -> _Connections:
    loop = asyncio.get_running_loop()
    state = _loops.get(loop)
    if state is None:
        for closed in [other for other in _loops if other.is_closed()]:
            del _loops[closed]
        # One writer uses one connection at a time; the spare is for a reconnection.
        client = aioredis.Redis.from_url(
            settings.REDIS_URL,
            max_connections=2,
            socket_timeout=5,
            socket_connect_timeout=5,
            health_check_interval=30,
        )
        state = _Connections(redis=client)
        _loops[loop] = state
    return state


def _queue(state: _Connections, *command: Any) -> asyncio.Future[Any]:
    """The future reply to one Redis command, sent in the writer's next round trip."""
    reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    state.queued.append((command, reply))
    if state.writer is None or state.writer.done():
        state.writer = asyncio.create_task(_write(state))
    return reply


async def _command(state: _Connections, *command: Any) -> Any:
    return await _queue(state, *command)


async def _write(state: _Connections) -> None:
    while state.queued:
        batch = state.queued[:CONNECTION_COMMAND_BATCH]
        del state.queued[:CONNECTION_COMMAND_BATCH]
        try:
            async with state.redis.pipeline(transaction=False) as pipeline:
                for command, _ in batch:
                    pipeline.execute_command(*command)
                replies: list[Any] = await pipeline.execute(raise_on_error=False)
        except Exception as error:  # the whole round trip failed (Redis away)
            replies = [error] * len(batch)
        for (_, reply), value in zip(batch, replies, strict=True):
            if reply.done():  # its caller was cancelled
                continue
            if isinstance(value, Exception):
                reply.set_exception(value)
            else:
                reply.set_result(value)


def _acquire(slots: str, channel_name: str) -> tuple[Any, ...]:
    limit = settings.CHAT_MAX_CONNECTIONS_PER_USER
    # EVAL, not EVALSHA: Redis caches the script by its digest either way, and a pipeline
    # of EVALSHA would fail whole after a restart that emptied the script cache.
    return ("EVAL", _SLOT_ACQUIRE, 1, slots, channel_name, limit, CONNECTION_TTL_SECONDS, "")


async def connection_open(*, owner_id: int, channel_name: str) -> bool:
    """Take a slot for an open websocket of this process; False when the user has
    CHAT_MAX_CONNECTIONS_PER_USER open already. The process renews the slot until
    `connection_close` (or `connection_close_soon`) gives it back."""
    state = _connections()
    slots = _connections_key(owner_id)
    try:
        held = bool(await _command(state, *_acquire(slots, channel_name)))
    except asyncio.CancelledError:
        # The script may run all the same: give the slot back (after it, in the writer's
        # order) rather than leave it for its lifetime.
        _release_later(state, slots, channel_name)
        raise
    if not held:
        metrics.rate_limit_refused("connections")
    else:
        metrics.websocket_opened()
        state.held[channel_name] = (slots, next(state.opened) % CONNECTION_RENEW_PARTS)
        if state.renewer is None or state.renewer.done():
            state.renewer = asyncio.create_task(_renew_forever(state))
    return held


async def connection_close(*, owner_id: int, channel_name: str) -> None:
    """Give the slot back now. It is no longer renewed from this moment, and when Redis
    cannot be reached the release goes on being tried in the background (the slot expires
    within CONNECTION_TTL_SECONDS anyway); the error is raised to the caller."""
    state = _connections()
    slots = _forget(state, channel_name) or _connections_key(owner_id)
    try:
        await _command(state, "ZREM", slots, channel_name)
    except BaseException:
        _release_later(state, slots, channel_name)
        raise


def connection_close_soon(*, channel_name: str) -> None:
    """Give back the slot of a connection whose consumer ended without `connection_close`
    (cancelled): a callback's way, from the event loop, without awaiting. Does nothing for
    a connection that holds no slot."""
    with contextlib.suppress(RuntimeError):  # no running loop: nothing of this loop's
        state = _connections()
        slots = _forget(state, channel_name)
        if slots is not None:
            _release_later(state, slots, channel_name)


def _forget(state: _Connections, channel_name: str) -> str | None:
    """Stop renewing the slot of `channel_name`; the slot set it is in, if it held one. The
    renewal task ends with the process's last slot."""
    held = state.held.pop(channel_name, None)
    if held is not None:
        metrics.websocket_closed()
    if not state.held and state.renewer is not None:
        state.renewer.cancel()
        state.renewer = None
    return None if held is None else held[0]


def _release_later(state: _Connections, slots: str, channel_name: str) -> None:
    task = asyncio.get_running_loop().create_task(_release(state, slots, channel_name))
    state.releases.add(task)
    task.add_done_callback(state.releases.discard)


async def _release(state: _Connections, slots: str, channel_name: str) -> None:
    """ZREM until it succeeds, or until the slot would have expired anyway."""
    deadline = time.monotonic() + CONNECTION_TTL_SECONDS
    delay = 0.5
    while True:
        try:
            await _command(state, "ZREM", slots, channel_name)
            return
        except Exception as error:
            if time.monotonic() + delay > deadline:
                logger.warning("a connection slot could not be released: %r", error)
                return
        await asyncio.sleep(delay)
        delay = min(delay * 2, CONNECTION_RETRY_SECONDS)


async def _renew_forever(state: _Connections) -> None:
    part = 0
    while state.held:
        await asyncio.sleep(CONNECTION_REFRESH_SECONDS / CONNECTION_RENEW_PARTS)
        try:
            await _renew(state, part)
        except Exception as error:  # Redis away: the same part again next time
            logger.warning("connection slots could not be renewed: %r", error)
        else:
            part = (part + 1) % CONNECTION_RENEW_PARTS


async def _renew(state: _Connections, part: int | None = None) -> None:
    """Renew the slots this process holds: those of one part of the renewal, or all."""
    replies = await asyncio.gather(
        *(
            _queue(state, *_acquire(slots, name))
            for name, (slots, its_part) in state.held.items()
            if part is None or its_part == part
        ),
        return_exceptions=True,
    )
    for reply in replies:
        if isinstance(reply, BaseException):
            raise reply
