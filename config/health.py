"""Liveness and readiness probes for load balancers and orchestrators.

`/readyz` is public, so it must stay cheap however often it is called: each process checks the
stores at most once per `READYZ_CACHE_SECONDS` (concurrent callers wait for that one check and
share its result), over one long-lived Redis client, and finds a live worker with one ZCOUNT on
a sorted set rather than a SCAN of the keyspace.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from chat.store import get_db

logger = logging.getLogger(__name__)

# Inference workers (inference/worker.py) keep their hostname here, scored with the time their
# liveness expires, while they consume their queues.
LIVE_WORKERS_KEY = "chat:workers"
# What the cache interval is measured with; tests replace it with a fake clock.
clock = time.monotonic


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_postgres() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_store() -> None:
    get_db().command("ping")


@lru_cache(maxsize=4)
def _redis_client(url: str) -> redis.Redis:
    """One client (and its connection pool) per process and URL, for every probe."""
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _check_redis() -> None:
    _redis_client(settings.REDIS_URL).ping()


def _check_worker() -> None:
    live = _redis_client(settings.REDIS_URL).zcount(LIVE_WORKERS_KEY, f"({time.time()}", "+inf")
    if not live:
        raise RuntimeError("no inference worker has reported in the last 30 seconds")


CHECKS: dict[str, Callable[[], None]] = {
    "postgres": _check_postgres,
    "store": _check_store,
    "redis": _check_redis,
    "worker": _check_worker,
}


def _probe() -> dict[str, str]:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as error:  # a probe reports every failure, whatever its kind
            logger.warning("readiness check %s failed: %s", name, error)
            results[name] = "failed"
    return results


class _LastProbe:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at = float("-inf")
        self.results: dict[str, str] = {}


_last = _LastProbe()


def readiness() -> dict[str, str]:
    """Each check's result, at most READYZ_CACHE_SECONDS old."""
    with _last.lock:
        if clock() - _last.at >= settings.READYZ_CACHE_SECONDS:
            _last.results = _probe()
            _last.at = clock()
        return dict(_last.results)


def readiness_forget() -> None:
    """Check afresh on the next call (tests)."""
    with _last.lock:
        _last.at = float("-inf")


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results = readiness()
    ready = all(value == "ok" for value in results.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": results},
        status=200 if ready else 503,
    )
