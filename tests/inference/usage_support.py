"""A usage record as the worker bills an answer, for the tests of what usage reports show."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from inference.models import UsageRecord


def record(
    user: Any,
    model: str,
    *,
    days_ago: int = 0,
    tokens: tuple[int, int] = (10, 5),
    source: str = "ws",
    api_key_id: int | None = None,
) -> None:
    """A bill of `user`'s, `days_ago` days old, costing 0.25; `api_key_id`: asked for through
    the API with that key (`source` is then `api`)."""
    UsageRecord.objects.create(
        source="api" if api_key_id is not None else source,
        api_key_id=api_key_id,
        generation_id=uuid.uuid4().hex,
        user=user,
        model=model,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        cost=Decimal("0.25"),
        finish_reason="stop",
        duration_ms=100,
        created_at=timezone.now() - timedelta(days=days_ago),
    )
