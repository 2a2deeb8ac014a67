"""Redis pub/sub channels belong to the whole server, whatever database REDIS_URL names: two
apps (or an app and a test run) on one Redis must not hear each other's events. Each app's
channel layer is prefixed with its CACHE_KEY_PREFIX (config/settings.py)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

from chat.consumers import ChatConsumer


def _layer(prefix: str, database: int) -> RedisPubSubChannelLayer:
    address = settings.REDIS_URL.rsplit("/", 1)[0] + f"/{database}"
    return RedisPubSubChannelLayer(
        hosts=[{"address": address, "socket_timeout": None}], prefix=prefix
    )


def test_the_channel_layer_is_prefixed_with_the_apps_key_prefix() -> None:
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    assert prefix == f"{settings.CACHES['default']['KEY_PREFIX']}:asgi"


async def test_apps_with_other_prefixes_on_one_redis_do_not_hear_each_other() -> None:
    run = uuid.uuid4().hex[:8]
    ours, theirs = _layer(f"ours-{run}:asgi", 1), _layer(f"theirs-{run}:asgi", 2)
    same_as_ours = _layer(f"ours-{run}:asgi", 2)  # another database, the same app
    channels = [await layer.new_channel() for layer in (ours, theirs, same_as_ours)]
    for layer, channel in zip((ours, theirs, same_as_ours), channels, strict=True):
        await layer.group_add("user.1", channel)
    try:
        await ours.group_send("user.1", {"type": "auth.recheck"})

        assert await asyncio.wait_for(ours.receive(channels[0]), 5) == {"type": "auth.recheck"}
        assert await asyncio.wait_for(same_as_ours.receive(channels[2]), 5) == {
            "type": "auth.recheck"
        }
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(theirs.receive(channels[1]), 0.5)
    finally:
        for layer in (ours, theirs, same_as_ours):
            await layer.flush()


async def test_an_event_of_an_unknown_type_is_dropped_not_a_crash() -> None:
    consumer = ChatConsumer()
    await consumer.dispatch({"type": "from.a.newer.version"})  # no ValueError: no 1011
