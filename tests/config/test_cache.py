"""The process shares one Redis cache client across threads and async contexts
(config/cache.py), on the real Redis."""

from __future__ import annotations

import asyncio
import threading

from asgiref.sync import sync_to_async
from django.core.cache import cache, caches


def _used_client_and_value(key: str) -> tuple[object, object]:
    cache.set(key, threading.get_ident(), timeout=30)
    return cache._cache, cache.get(key)


def test_every_async_context_uses_the_same_client_and_pool() -> None:
    """Django makes a cache object per async context; before the shared backend each one opened
    its own pool, and 40 consumers meant 40 Redis connections."""

    async def main() -> list[tuple[object, object]]:
        return await asyncio.gather(
            *(sync_to_async(_used_client_and_value)(f"test-cache:{n}") for n in range(40))
        )

    # A fresh thread starts with an empty context, as a server's event loop does.
    results: list[tuple[object, object]] = []
    loop_thread = threading.Thread(target=lambda: results.extend(asyncio.run(main())))
    loop_thread.start()
    loop_thread.join()
    assert len(results) == 40
    clients = {id(client) for client, _ in results}
    assert len(clients) == 1
    assert all(value is not None for _, value in results)
    (client,) = {client for client, _ in results}
    pools = list(client._pools.values())  # type: ignore[attr-defined]
    created = sum(pool._created_connections for pool in pools)
    assert 1 <= created <= 2, created
    cache.delete_many([f"test-cache:{n}" for n in range(40)])


def test_threads_share_the_client() -> None:
    seen: list[object] = []

    def run() -> None:
        seen.append(caches["default"]._cache)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in seen}) == 1
