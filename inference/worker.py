"""The worker's life cycle: preload the engine, advertise liveness, stop the engine on exit.

With `INFERENCE_PRELOAD` on, the liveness key appears only once the engine is loaded, so
`/readyz` means "a worker can answer now". Every inference worker also consumes the maintenance
queue (the reaper), whatever `-Q` lists.

Connected to Celery's signals, which only fire inside a worker process; importing this module
anywhere else is harmless.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any

import redis
from celery.signals import celeryd_after_setup, worker_ready, worker_shutdown
from django.conf import settings

from config import memtrace, process
from config.health import LIVE_WORKERS_KEY
from inference import versions
from inference.engine import host

logger = logging.getLogger(__name__)

LIVENESS_PREFIX = "chat:worker:"
LIVENESS_TTL_SECONDS = 30
LIVENESS_INTERVAL_SECONDS = 10


def worker_name() -> str:
    """This process as the staff console names it: the Celery worker's hostname (`-n`), or
    host and pid outside a worker (a test, a script)."""
    if _liveness is not None:
        return _liveness.hostname
    return f"{socket.gethostname()}:{os.getpid()}"


def liveness_key(hostname: str) -> str:
    return f"{LIVENESS_PREFIX}{hostname}"


class Liveness:
    """Refreshes `chat:worker:<hostname>` (what it serves) and the worker's score in
    `LIVE_WORKERS_KEY` (until when it counts as live) while the worker runs. `/readyz` counts
    the live scores with one ZCOUNT, where it used to SCAN for the keys."""

    def __init__(self, *, hostname: str, queues: list[str], client: redis.Redis) -> None:
        self.hostname = hostname
        self.key = liveness_key(hostname)
        self.queues = queues
        self.client = client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-liveness", daemon=True)

    def beat(self) -> None:
        now = time.time()
        value = json.dumps({"queues": self.queues, "pid": os.getpid(), "at": now})
        pipe = self.client.pipeline()
        pipe.set(self.key, value, ex=LIVENESS_TTL_SECONDS)
        pipe.zadd(LIVE_WORKERS_KEY, {self.hostname: now + LIVENESS_TTL_SECONDS})
        # Workers that died without stopping leave a score in the past: trim them.
        pipe.zremrangebyscore(LIVE_WORKERS_KEY, "-inf", now)
        pipe.execute()

    def _beat_logged(self) -> None:
        try:
            self.beat()
        except redis.RedisError:
            logger.warning("could not refresh %s", self.key, exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(LIVENESS_INTERVAL_SECONDS):
            self._beat_logged()

    def start(self) -> None:
        # The first beat before returning: the worker counts as live as soon as it is ready.
        self._beat_logged()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self.client.delete(self.key)
            self.client.zrem(LIVE_WORKERS_KEY, self.hostname)
        except redis.RedisError:
            logger.warning("could not delete %s", self.key, exc_info=True)


_liveness: Liveness | None = None
_watcher: versions.VersionWatcher | None = None


def _consumed_queues(consumer: Any) -> list[str]:
    try:
        return sorted(consumer.app.amqp.queues.consume_from.keys())
    except AttributeError:
        return []


async def _start_stop_listener() -> None:
    from inference.stop import listener

    listener.ensure_started()


def _preload(queues: list[str]) -> bool:
    """Start the engine now rather than on the first task (about 25 s on a CPU), and the stop
    listener beside it. False when no engine could be started."""
    from inference.models import LanguageModel

    model = LanguageModel.objects.filter(enabled=True, queue__in=queues).first()
    if model is None:
        logger.warning("no enabled model is served on queues %s", queues)
        return False
    try:
        # The engines of the versions it serves (the active one, and a canary); a thread
        # follows the versions from then on (inference.versions).
        versions.engines_sync(model, drain_timeout=0)
        host.run(_start_stop_listener(), timeout=10)
    except Exception:
        logger.exception("could not start the engine for %s", model.name)
        return False
    global _watcher
    _watcher = versions.VersionWatcher(model_name=model.name)
    _watcher.start()
    return True


def _serves_models(queues: list[str]) -> bool:
    maintenance = settings.INFERENCE_MAINTENANCE_QUEUE
    return any(q.startswith("inference.") and q != maintenance for q in queues)


def _preload_then_advertise(queues: list[str], liveness: Liveness) -> None:
    if _preload(queues):
        liveness.start()
    else:
        logger.error("the engine did not start: this worker does not report itself ready")


@celeryd_after_setup.connect
def on_worker_setup(sender: str, instance: Any, **_: Any) -> None:
    process.tune()
    queues = instance.app.amqp.queues
    serves_models = _serves_models(list(queues.consume_from or {}))
    if serves_models:
        queues.select_add(settings.INFERENCE_MAINTENANCE_QUEUE)
    memtrace.install(engine=serves_models)  # a soak's diagnosis (MEMORY_TRACE_DIR)


@worker_ready.connect
def on_worker_ready(sender: Any, **_: Any) -> None:
    global _liveness
    if settings.WORKER_METRICS_PORT:
        from config.metrics_api import worker_metrics_serve

        worker_metrics_serve(settings.WORKER_METRICS_PORT)
    queues = _consumed_queues(sender)
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    _liveness = Liveness(hostname=sender.hostname, queues=queues, client=client)
    if not _serves_models(queues):
        return  # a maintenance worker (the reaper): it answers nobody, so readiness ignores it
    if settings.INFERENCE_PRELOAD:
        # Ready means "can answer": the key appears once the engine is loaded.
        threading.Thread(
            target=_preload_then_advertise,
            args=(queues, _liveness),
            name="engine-preload",
            daemon=True,
        ).start()
    else:
        _liveness.start()


@worker_shutdown.connect
def on_worker_shutdown(**_: Any) -> None:
    # Celery's warm shutdown does not finish while the engine's processes run: stop them here.
    if _liveness is not None:
        _liveness.stop()
    if _watcher is not None:
        _watcher.stop()
    host.shutdown()
