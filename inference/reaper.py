"""The reaper: ends generations that nobody streams any more.

A worker that dies (kill -9, a lost machine) leaves its generations in state `streaming` with
a heartbeat that stops moving, and the generations it had reserved but not started in state
`queued` with their task gone. Celery beat runs `inference.reap_stale` every
`INFERENCE_REAP_INTERVAL_SECONDS`; ops can run `python manage.py reap_stale`. Each such
generation is ended as `interrupted` through `generation_end`, keeping its partial text, billing
what its last checkpoint counted, and telling its subscribers with `generation.error`. Several
reapers may run at once: the store's single final write decides which one ends each generation.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from chat import selectors
from chat.generation.record import Ending
from inference.services import generation_end

logger = logging.getLogger(__name__)

STALE_MESSAGE = "The answer was interrupted (its worker stopped). You can regenerate it."
LOST_MESSAGE = "The answer never started (its task was lost). You can regenerate it."
BATCH = 100


@dataclass(frozen=True)
class ReapResult:
    streaming: int
    queued: int

    @property
    def total(self) -> int:
        return self.streaming + self.queued


def queued_timeout_seconds() -> int:
    """A queued generation older than the broker's visibility timeout has lost its task:
    by then Redis would have handed the task to another worker."""
    from config.celery import visibility_timeout

    return visibility_timeout() + 60


def _stale(*, before: datetime, states: tuple[str, ...]) -> list[dict[str, Any]]:
    return list(
        selectors.generation_list_stale(heartbeat_before=before, states=states, limit=BATCH)
    )


async def generations_reap(
    *,
    layer: Any = None,
    now: datetime | None = None,
    stale_after: float | None = None,
    queued_after: float | None = None,
) -> ReapResult:
    """End every stale streaming generation and every queued one whose task is lost."""
    layer = layer or get_channel_layer()
    now = now or timezone.now()
    stale_after = settings.INFERENCE_STALE_AFTER_SECONDS if stale_after is None else stale_after
    queued_after = queued_timeout_seconds() if queued_after is None else queued_after
    counts = {"streaming": 0, "queued": 0}
    for state, age, message_text in (
        ("streaming", stale_after, STALE_MESSAGE),
        ("queued", queued_after, LOST_MESSAGE),
    ):
        found = await asyncio.to_thread(
            _stale, before=now - timedelta(seconds=age), states=(state,)
        )
        for message in found:
            ending = Ending.from_document(message, state="interrupted", error_message=message_text)
            # Billed before the clients hear: a reaper that dies in between is not retried.
            if await generation_end(ending, layer=layer, bill_first=True):
                counts[state] += 1
                logger.warning("reaped %s generation %s", state, message["generation_id"])
    return ReapResult(**counts)
