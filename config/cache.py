"""Django's Redis cache with one client, and so one connection pool, per process.

Django builds a cache object per thread and, under ASGI, per async context: every websocket
consumer and every task that touches `django.core.cache.cache` gets its own `RedisCache`,
whose client opens its own pool. On the web server that was one new Redis connection per
consumer that used the cache (the moderation context, the rules-version check), kept until the
consumer was garbage-collected: connection setup on the message path, and connections that grow
with sockets rather than with work. redis-py's pools are thread-safe, so the cache objects can
share one client; Django's per-context objects remain, and only hold a reference to it.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

_clients: dict[str, RedisCacheClient] = {}
_lock = threading.Lock()


def _client(servers: list[str], options: dict[str, Any]) -> RedisCacheClient:
    key = json.dumps([servers, options], sort_keys=True, default=repr)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = RedisCacheClient(servers, **options)
        return client


class SharedRedisCache(RedisCache):
    """`RedisCache` whose client is shared by every cache object of the process that has the
    same servers and options."""

    @cached_property
    def _cache(self) -> RedisCacheClient:
        # RedisCache parsed LOCATION and OPTIONS into these; django-stubs do not declare them.
        return _client(list(self._servers), dict(self._options))  # type: ignore[attr-defined]
