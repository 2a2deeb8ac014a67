"""Connection slots held on the event loop (`chat.limits.connection_open` and friends) and the
consumer's use of them: one renewal task per process, and a slot given back however a
connection ends (a disconnect, a cancelled consumer, a cancelled registration, a Redis error)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from pytest_django import Settings
from redis.asyncio.client import Pipeline

from chat import limits
from tests.chat.consumer_support import Dispatched, connect

pytest_plugins = ["tests.chat.consumer_support"]


@pytest.fixture
def own_prefix(settings: Settings) -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis, deleted afterwards."""
    prefix = f"chat-test-slots-{uuid.uuid4().hex}"
    caches = {name: dict(config) for name, config in django_settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = prefix
    settings.CACHES = caches
    yield prefix
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"*{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def sync_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    yield client
    client.close()


async def settled() -> None:
    """Let the background releases of this loop finish."""
    state = limits._connections()
    for _ in range(100):
        if not state.releases:
            return
        await asyncio.gather(*state.releases, return_exceptions=True)


async def test_slots_are_taken_up_to_the_limit_and_given_back(
    own_prefix: str, settings: Settings, sync_redis: redis.Redis
) -> None:
    settings.CHAT_MAX_CONNECTIONS_PER_USER = 2
    key = limits.key("connections", 7)

    opened = [await limits.connection_open(owner_id=7, channel_name=f"c{n}") for n in range(3)]
    assert opened == [True, True, False]
    assert sync_redis.zcard(key) == 2

    await limits.connection_close(owner_id=7, channel_name="c0")
    assert sync_redis.zcard(key) == 1
    assert await limits.connection_open(owner_id=7, channel_name="c2")
    for name in ("c1", "c2"):
        await limits.connection_close(owner_id=7, channel_name=name)
    assert sync_redis.zcard(key) == 0


async def test_a_storm_of_registrations_takes_a_few_round_trips(
    own_prefix: str, monkeypatch: pytest.MonkeyPatch, sync_redis: redis.Redis
) -> None:
    round_trips = 0
    execute = Pipeline.execute

    async def counted(pipeline: Pipeline, *args: Any, **kwargs: Any) -> Any:
        nonlocal round_trips
        round_trips += 1
        return await execute(pipeline, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", counted)

    opened = await asyncio.gather(
        *(limits.connection_open(owner_id=n, channel_name=f"c{n}") for n in range(500))
    )

    assert opened == [True] * 500
    assert round_trips <= 2
    await asyncio.gather(
        *(limits.connection_close(owner_id=n, channel_name=f"c{n}") for n in range(500))
    )
    assert not list(sync_redis.scan_iter(match=f"{own_prefix}:chat:connections:*"))


async def test_one_task_renews_every_slot_of_the_process(
    own_prefix: str, monkeypatch: pytest.MonkeyPatch, sync_redis: redis.Redis
) -> None:
    monkeypatch.setattr(limits, "CONNECTION_REFRESH_SECONDS", 0.2)
    monkeypatch.setattr(limits, "CONNECTION_COMMAND_BATCH", 3)  # several round trips
    for n in range(7):
        await limits.connection_open(owner_id=n, channel_name=f"c{n}")
    keys = [limits.key("connections", n) for n in range(7)]
    expiries = [float(sync_redis.zscore(key, f"c{n}") or 0) for n, key in enumerate(keys)]

    await asyncio.sleep(0.5)

    renewed = [float(sync_redis.zscore(key, f"c{n}") or 0) for n, key in enumerate(keys)]
    assert all(after > before for before, after in zip(expiries, renewed, strict=True))
    for n in range(7):
        await limits.connection_close(owner_id=n, channel_name=f"c{n}")
    state = limits._connections()
    assert (state.held, state.renewer) == ({}, None)  # it ends with the last slot


async def test_a_connection_closed_while_its_renewal_is_on_the_way_is_not_renewed_back(
    own_prefix: str, sync_redis: redis.Redis
) -> None:
    await limits.connection_open(owner_id=1, channel_name="closing")
    state = limits._connections()
    renewal = asyncio.create_task(limits._renew(state))
    await asyncio.sleep(0)  # the renewal is queued, not yet sent

    await limits.connection_close(owner_id=1, channel_name="closing")
    await renewal

    assert sync_redis.zcard(limits.key("connections", 1)) == 0


async def test_a_release_that_fails_is_retried_in_the_background(
    own_prefix: str, monkeypatch: pytest.MonkeyPatch, sync_redis: redis.Redis
) -> None:
    await limits.connection_open(owner_id=1, channel_name="c")
    execute = Pipeline.execute
    failures = iter([redis.ConnectionError("Redis is away"), redis.ConnectionError("still")])

    async def flaky(pipeline: Pipeline, *args: Any, **kwargs: Any) -> Any:
        error = next(failures, None)
        if error is not None:
            raise error
        return await execute(pipeline, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", flaky)
    with pytest.raises(redis.ConnectionError):
        await limits.connection_close(owner_id=1, channel_name="c")
    assert sync_redis.zcard(limits.key("connections", 1)) == 1  # not yet
    assert "c" not in limits._connections().held  # no longer renewed

    await settled()

    assert sync_redis.zcard(limits.key("connections", 1)) == 0


async def test_a_registration_cancelled_in_flight_gives_its_slot_back(
    own_prefix: str, monkeypatch: pytest.MonkeyPatch, sync_redis: redis.Redis
) -> None:
    execute = Pipeline.execute
    reached_redis = asyncio.Event()

    async def slow_reply(pipeline: Pipeline, *args: Any, **kwargs: Any) -> Any:
        replies = await execute(pipeline, *args, **kwargs)
        if not reached_redis.is_set():  # Redis has taken the slot; the reply is slow
            reached_redis.set()
            await asyncio.sleep(0.5)
        return replies

    monkeypatch.setattr(Pipeline, "execute", slow_reply)
    registering = asyncio.create_task(limits.connection_open(owner_id=1, channel_name="c"))
    await reached_redis.wait()
    assert sync_redis.zcard(limits.key("connections", 1)) == 1
    registering.cancel()
    with pytest.raises(asyncio.CancelledError):
        await registering
    await settled()

    assert sync_redis.zcard(limits.key("connections", 1)) == 0
    assert limits._connections().held == {}


@pytest.mark.django_db(transaction=True)
async def test_a_handshake_completes_with_the_slot_already_held(
    chat_env: Dispatched, make_user: Any, sync_redis: redis.Redis
) -> None:
    user = await sync_to_async(make_user)()
    key = limits.key("connections", user.pk)

    client = await connect(user)

    assert sync_redis.zcard(key) == 1  # no wait: taken before the accept went out
    await client.close()
    assert sync_redis.zcard(key) == 0


@pytest.mark.django_db(transaction=True)
async def test_a_consumer_cancelled_without_disconnect_gives_its_slot_back(
    chat_env: Dispatched, make_user: Any, sync_redis: redis.Redis
) -> None:
    # What Daphne does to an application that is slow to end after its client left.
    user = await sync_to_async(make_user)()
    client = await connect(user)
    key = limits.key("connections", user.pk)
    assert sync_redis.zcard(key) == 1

    client.communicator.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await client.communicator.future
    await asyncio.sleep(0)  # the task's done callbacks
    await settled()

    assert sync_redis.zcard(key) == 0
    assert limits._connections().held == {}
