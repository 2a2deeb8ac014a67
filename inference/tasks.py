"""Celery tasks of the inference worker. Thin: the work happens on the engine loop."""

from __future__ import annotations

import asyncio

from celery import shared_task
from django.conf import settings

from config import logs
from inference import worker  # noqa: F401  (connects the worker's start/stop signals)
from inference.engine import host
from inference.reaper import generations_reap
from inference.streaming import generation_run
from inference.titles import RUN_TIMEOUT_SECONDS, TITLE_TASK, title_run

# Past the stream's own limit: preparation, the engine's first start, the closing writes.
RUN_MARGIN_SECONDS = 180


@shared_task(name="inference.generate", acks_late=True, reject_on_worker_lost=True)
def generate(generation_id: str, owner_id: int, priority: int | None = None) -> None:
    """Stream one stored generation; N concurrent tasks are N requests batched by vLLM.

    `priority` is the user's (0 low, 5 normal, 9 high); tasks enqueued without it (older
    messages) read it from the user."""
    with logs.adding(generation_id=generation_id, user_id=owner_id):
        host.run(
            generation_run(generation_id=generation_id, owner_id=owner_id, priority=priority),
            timeout=settings.INFERENCE_TASK_TIME_LIMIT_SECONDS + RUN_MARGIN_SECONDS,
        )


@shared_task(name=TITLE_TASK, ignore_result=True)
def title(generation_id: str, owner_id: int) -> None:
    """Title a conversation after its first answer (low priority; see inference.titles).
    Not acked late: a title lost with its worker is not worth a second answer's wait."""
    with logs.adding(generation_id=generation_id, user_id=owner_id):
        host.run(
            title_run(generation_id=generation_id, owner_id=owner_id), timeout=RUN_TIMEOUT_SECONDS
        )


@shared_task(name="inference.reap_stale", ignore_result=True)
def reap_stale() -> int:
    """Interrupt generations whose worker died; run by Celery beat.

    On a loop of its own, not the engine's: the reaper must work in a maintenance worker that
    hosts no engine, and in a GPU worker whose engine is still loading."""
    return asyncio.run(generations_reap()).total
