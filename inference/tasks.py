"""Celery tasks of the inference worker. Thin: the work happens on the engine loop."""

from __future__ import annotations

from celery import shared_task

from inference import worker  # noqa: F401  (connects the worker's start/stop signals)
from inference.engine import host
from inference.streaming import generation_run


@shared_task(name="inference.generate", acks_late=True, reject_on_worker_lost=True)
def generate(generation_id: str, owner_id: int) -> None:
    """Stream one stored generation; N concurrent tasks are N requests batched by vLLM."""
    host.run(generation_run(generation_id=generation_id, owner_id=owner_id))
