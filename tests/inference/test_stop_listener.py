"""The per-process stop listener against the real Redis: a stop published by the web tier
(`chat.generation.stop.signal`) reaches the registry, also after Redis dropped the
listener's connection, and a stop set while it was deaf is found from its key."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from django.conf import settings

from chat.generation import names, stop
from inference.stop import StopListener, StopRegistry


async def eventually(condition, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
    return True


def kill_listener_connections(name: str) -> int:
    client = redis.Redis.from_url(settings.REDIS_URL)
    killed = 0
    for entry in client.client_list():
        if entry.get("name") == name:
            killed += int(client.client_kill_filter(_id=entry["id"]))
    return killed


async def test_a_published_stop_reaches_a_running_generation_within_a_second() -> None:
    stops = StopRegistry()
    listener = StopListener(stops)
    generation_id = uuid.uuid4().hex
    event = stops.track(generation_id)
    listener.ensure_started()
    try:
        await asyncio.wait_for(listener.subscribed.wait(), 5)
        loop = asyncio.get_running_loop()
        sent = loop.time()

        await asyncio.to_thread(stop.signal, generation_id=generation_id)
        await asyncio.wait_for(event.wait(), 1.0)

        assert loop.time() - sent < 1.0
        assert stops.is_requested(generation_id)
        assert not stops.is_requested(uuid.uuid4().hex)
    finally:
        await listener.stop()


async def test_the_listener_reconnects_and_finds_stops_it_missed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"stop-test-{uuid.uuid4().hex[:8]}"
    stops = StopRegistry()
    listener = StopListener(stops, client_name=name)
    missed, later = uuid.uuid4().hex, uuid.uuid4().hex
    missed_event, later_event = stops.track(missed), stops.track(later)
    listener.ensure_started()
    try:
        await asyncio.wait_for(listener.subscribed.wait(), 5)
        # Redis drops us (as in a restart); meanwhile a stop is recorded only in its key.
        assert await asyncio.to_thread(kill_listener_connections, name) >= 1
        client = redis.Redis.from_url(settings.REDIS_URL)
        client.set(names.stop_key(missed), b"1", ex=60)

        await asyncio.wait_for(missed_event.wait(), 5)
        assert listener.reconnects >= 1
        await asyncio.wait_for(listener.subscribed.wait(), 5)
        await asyncio.to_thread(stop.signal, generation_id=later)
        await asyncio.wait_for(later_event.wait(), 1.0)
    finally:
        await listener.stop()


def test_stops_for_generations_not_running_here_are_remembered_boundedly() -> None:
    stops = StopRegistry()
    for index in range(10_050):
        stops.request(f"g{index}")

    assert not stops.is_requested("g0")  # the oldest were forgotten
    assert stops.is_requested("g10049")
    assert stops.track("g10049").is_set()  # a stop heard before the generation started here


def test_the_engine_host_stops_the_listener_on_its_loop_when_it_shuts_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from inference import stop
    from inference.engine import EngineHost

    listener = StopListener(StopRegistry())
    monkeypatch.setattr(stop, "listener", listener)
    host = EngineHost()

    async def start() -> asyncio.Task[None]:
        listener.ensure_started()
        await asyncio.wait_for(listener.subscribed.wait(), timeout=5)
        assert listener.task is not None
        return listener.task

    task = host.run(start(), timeout=10)
    host.shutdown()

    assert listener.task is None
    assert task.cancelled()
