"""Worker wiring: the Celery configuration, and the liveness key in the real Redis."""

from __future__ import annotations

import json
import os
import uuid

import pytest
import redis
from django.conf import settings

from config.celery import app
from inference.worker import LIVENESS_TTL_SECONDS, Liveness, liveness_key


def test_celery_is_configured_for_long_streaming_tasks() -> None:
    import inference.tasks  # noqa: F401  (registers the task)

    conf = app.conf
    assert conf.worker_pool == "threads"
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    limit = settings.INFERENCE_TASK_TIME_LIMIT_SECONDS
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit > limit
    assert "inference.generate" in app.tasks


@pytest.fixture
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def test_liveness_advertises_the_worker_with_a_short_ttl_and_removes_it_on_stop(
    redis_client: redis.Redis,
) -> None:
    hostname = f"test-{uuid.uuid4().hex}@host"
    liveness = Liveness(hostname=hostname, queues=["inference.x"], client=redis_client)

    liveness.start()
    try:
        value = json.loads(redis_client.get(liveness_key(hostname)) or b"null")
        ttl = redis_client.ttl(liveness_key(hostname))
        found = [k.decode() for k in redis_client.scan_iter(match="chat:worker:*", count=1000)]
    finally:
        liveness.stop()

    assert value["queues"] == ["inference.x"]
    assert value["pid"] == os.getpid()
    assert 0 < ttl <= LIVENESS_TTL_SECONDS
    assert liveness_key(hostname) in found
    assert redis_client.exists(liveness_key(hostname)) == 0
