"""The Celery application shared by the web tier (which enqueues by task name) and the workers.

Workers host vLLM and must run the `threads` pool: prefork children are daemonic and cannot
start vLLM's engine processes, and one task per process would defeat continuous batching.
Run one per model queue, e.g.:

    celery -A config worker -P threads -c 32 -Q inference.smollm2-135m -n gpu@%h
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("chat")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _time_limit() -> int:
    from django.conf import settings

    return int(getattr(settings, "INFERENCE_TASK_TIME_LIMIT_SECONDS", 600))


app.conf.update(
    worker_pool="threads",
    # A task is acknowledged when it ends, and requeued if its worker dies meanwhile.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # Each thread reserves one task at a time: waiting work stays in the broker, where another
    # worker can take it.
    worker_prefetch_multiplier=1,
    # The threads pool does not enforce time limits; the stream enforces the same limit itself.
    task_time_limit=_time_limit() + 60,
    broker_transport_options={
        # Longer than any generation, else Redis redelivers a task that is still running.
        "visibility_timeout": max(3600, 2 * _time_limit()),
        # Ten priority levels. On the Redis transport 0 is served FIRST (on RabbitMQ, 9 is).
        "priority_steps": list(range(10)),
    },
    broker_connection_retry_on_startup=True,
    task_default_queue="celery",
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks()
