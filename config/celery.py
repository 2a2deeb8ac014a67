"""The Celery application shared by the web tier (which enqueues by task name) and the workers.

Workers host vLLM and must run the `threads` pool: prefork children are daemonic and cannot
start vLLM's engine processes, and one task per process would defeat continuous batching.
Run one per model queue, e.g.:

    celery -A config worker -P threads -c 32 -Q inference.smollm2-135m -n gpu@%h
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_init
from django.conf import settings

from config import logs, tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("chat")
app.config_from_object("django.conf:settings", namespace="CELERY")


def visibility_timeout() -> int:
    """Seconds Redis waits for an acknowledgement before handing a task to another worker."""
    return int(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]))


app.conf.update(
    worker_pool="threads",
    # A task is acknowledged when it ends, and requeued if its worker dies meanwhile.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # Each thread reserves one task at a time: waiting work stays in the broker, where another
    # worker can take it.
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    # A task running when the broker connection drops keeps streaming (its answer is on the
    # channel layer); if it is delivered again, it finds the generation live or final and
    # does nothing.
    worker_cancel_long_running_tasks_on_connection_loss=False,
    # Keep retrying a lost broker (a Redis restart) for as long as it takes.
    broker_connection_retry=True,
    broker_connection_max_retries=None,
    broker_connection_retry_on_startup=True,
    task_default_queue="celery",
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks()

# The publisher's log ids (request, user, conversation, generation) travel in each task's
# headers and are the task's while it runs (config/logs.py).
before_task_publish.connect(logs.task_published, weak=False)
task_prerun.connect(logs.task_started, weak=False)
task_postrun.connect(logs.task_ended, weak=False)


@worker_init.connect
def traced_worker(**_: object) -> None:
    """Traces from this worker when OTEL_EXPORTER_OTLP_ENDPOINT is set (config/tracing.py):
    each task's run span continues the trace its publisher put in the task's headers."""
    tracing.configure("chat-worker", celery=True)
