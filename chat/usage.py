"""Usage against a user's plan: the month's tokens, read from the usage records without
importing `inference`, which owns them (through Django's app registry by label, like
`chat.catalog` reads the model registry), and what is left of every limit."""

from __future__ import annotations

import logging
import math
from datetime import datetime

from django.apps import apps
from django.db.models import Sum
from django.utils import timezone

from accounts.plans import PlanLimits
from chat import limits
from chat.generation import slots

logger = logging.getLogger(__name__)


def month_start(now: datetime | None = None) -> datetime:
    """Midnight UTC on the first of the current month."""
    now = now or timezone.now()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def seconds_to_next_month(now: datetime | None = None) -> int:
    now = now or timezone.now()
    start = month_start(now)
    following = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else (start.replace(month=start.month + 1))
    )
    return max(1, math.ceil((following - now).total_seconds()))


def tokens_this_month(*, owner_id: int) -> int:
    """Prompt and completion tokens of the user's generations that ended this month (UTC)."""
    usage_record = apps.get_model("inference", "UsageRecord")
    totals = usage_record.objects.filter(user_id=owner_id, created_at__gte=month_start()).aggregate(
        prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens")
    )
    return int(totals["prompt"] or 0) + int(totals["completion"] or 0)


def plan_left(owner_id: int, plan: PlanLimits) -> dict[str, int | None]:
    """What is left now of the user's plan (for `GET /api/auth/me`); None: no limit, or
    Redis or the database cannot be read at the moment (the rest still shows)."""
    left: dict[str, int | None] = {
        "messages_this_minute": None,
        "messages_today": None,
        "tokens_this_month": None,
        "concurrent_generations": None,
    }
    try:
        windows = limits.messages_left(
            owner_id=owner_id, per_minute=plan.messages_per_minute, per_day=plan.daily_messages
        )
        left["messages_this_minute"], left["messages_today"] = windows["minute"], windows["day"]
        held = len(slots.held(owner_id=owner_id))
        left["concurrent_generations"] = max(0, plan.concurrent_generations - held)
    except Exception:
        logger.warning("could not read the rate windows of %s", owner_id, exc_info=True)
    if plan.monthly_token_budget:
        try:
            used = tokens_this_month(owner_id=owner_id)
            left["tokens_this_month"] = max(0, plan.monthly_token_budget - used)
        except Exception:
            logger.warning("could not read the token usage of %s", owner_id, exc_info=True)
    return left
