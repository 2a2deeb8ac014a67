"""Worker wiring: the Celery configuration, and the liveness key in the real Redis."""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

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


def test_beat_runs_the_reaper_on_the_maintenance_queue_that_workers_consume() -> None:
    import inference.tasks  # noqa: F401

    (entry,) = [e for e in app.conf.beat_schedule.values() if e["task"] == "inference.reap_stale"]
    assert entry["schedule"] == settings.INFERENCE_REAP_INTERVAL_SECONDS
    assert entry["options"]["queue"] == settings.INFERENCE_MAINTENANCE_QUEUE
    assert "inference.reap_stale" in app.tasks
    assert app.conf.broker_connection_max_retries is None  # survives a Redis restart


def test_with_preload_the_worker_reports_ready_only_once_the_engine_is_loaded(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    import threading
    import types

    from inference import worker

    settings.INFERENCE_PRELOAD = True
    loaded = threading.Event()
    monkeypatch.setattr(worker, "_preload", lambda queues: loaded.wait(10))
    hostname = f"test-{uuid.uuid4().hex}@host"
    queues = {"inference.smollm2-135m": None}
    sender = types.SimpleNamespace(
        hostname=hostname,
        app=types.SimpleNamespace(
            amqp=types.SimpleNamespace(queues=types.SimpleNamespace(consume_from=queues))
        ),
    )

    worker.on_worker_ready(sender)
    try:
        assert redis_client.exists(liveness_key(hostname)) == 0  # still loading
        loaded.set()
        for _ in range(100):
            if redis_client.exists(liveness_key(hostname)):
                break
            time.sleep(0.05)
        assert redis_client.exists(liveness_key(hostname)) == 1
    finally:
        assert worker._liveness is not None
        worker._liveness.stop()
