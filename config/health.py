"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from chat.store import get_db

logger = logging.getLogger(__name__)

# Workers refresh `chat:worker:<hostname>` with a short TTL while they consume their queues.
WORKER_KEY_PATTERN = "chat:worker:*"


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_postgres() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_store() -> None:
    get_db().command("ping")


def _redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def _check_redis() -> None:
    _redis_client().ping()


def _check_worker() -> None:
    if next(_redis_client().scan_iter(match=WORKER_KEY_PATTERN, count=100), None) is None:
        raise RuntimeError("no inference worker has reported in the last 30 seconds")


CHECKS: dict[str, Callable[[], None]] = {
    "postgres": _check_postgres,
    "store": _check_store,
    "redis": _check_redis,
    "worker": _check_worker,
}


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as error:  # a probe reports every failure, whatever its kind
            logger.warning("readiness check %s failed: %s", name, error)
            results[name] = "failed"
    ready = all(value == "ok" for value in results.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": results},
        status=200 if ready else 503,
    )
