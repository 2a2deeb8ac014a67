"""The numbers of the staff dashboard (`GET /api/admin/stats`, drawn by `/admin/dashboard/`):
usage and cost over time per model and per plan, the top users, time to first token and
tokens/s per model, queue depths and live generations, moderation decisions per category
over time, and the open websockets. Read from PostgreSQL (usage records, moderation events),
the conversation store (live generations), Redis (queues) and the metrics of every web
process (connections)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Sum
from django.db.models.functions import Cast, TruncDay, TruncHour
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from chat import selectors as chat_selectors
from chat.generation import waiting
from chat.generation.record import QUEUED, STREAMING
from config.metrics import exposition
from inference.models import LanguageModel, UsageRecord
from inference.selectors import usage_group_rows, usage_grouped
from moderation.models import ModerationEvent

logger = logging.getLogger(__name__)

STATS_MAX_HOURS = 24 * 31
# Windows up to this long are drawn per hour, longer ones per day.
HOURLY_UP_TO_HOURS = 72
TOP_USERS = 10
# Live generations counted for the dashboard's totals (its table pages through the API).
LIVE_COUNT_MAX = 1000


class Percentile(Aggregate):
    """PostgreSQL's `percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)`."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, *, fraction: float) -> None:
        super().__init__(expression, fraction=float(fraction))


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _usage_over_time(records: Any, trunc: Any, key: str) -> list[dict[str, Any]]:
    rows = (
        records.annotate(bucket=trunc)
        .values("bucket", key)
        .annotate(
            generations=Count("id"),
            tokens=Sum(F("prompt_tokens") + F("completion_tokens")),
            cost_total=Sum("cost"),
        )
        .order_by("bucket", key)
    )
    return [
        {
            "bucket": _iso(row["bucket"]),
            key: row[key] or None,  # a plan not known: None (`UsageRecord.plan`)
            "generations": int(row["generations"]),
            "tokens": int(row["tokens"] or 0),
            "cost": float(row["cost_total"] or 0),
        }
        for row in rows
    ]


def _latency(records: Any) -> list[dict[str, Any]]:
    """Per model: time to first token and decode speed (completion tokens per second after
    the first), p50 and p95, over the generations that produced text."""
    decoding = Cast(F("duration_ms") - F("time_to_first_token_ms"), FloatField())
    # Inside the aggregates, not annotated before values(): that would group by it.
    speed = Cast(F("completion_tokens"), FloatField()) * 1000.0 / decoding
    rows = (
        records.filter(
            time_to_first_token_ms__isnull=False,
            completion_tokens__gt=1,
            duration_ms__gt=F("time_to_first_token_ms"),
        )
        .values("model")
        .annotate(
            generations=Count("id"),
            ttft_p50=Percentile("time_to_first_token_ms", fraction=0.5),
            ttft_p95=Percentile("time_to_first_token_ms", fraction=0.95),
            speed_p50=Percentile(speed, fraction=0.5),
            speed_p95=Percentile(speed, fraction=0.95),
        )
        .order_by("model")
    )
    return [
        {
            "model": row["model"],
            "generations": int(row["generations"]),
            "ttft_ms_p50": round(row["ttft_p50"], 1),
            "ttft_ms_p95": round(row["ttft_p95"], 1),
            "tokens_per_second_p50": round(row["speed_p50"], 1),
            "tokens_per_second_p95": round(row["speed_p95"], 1),
        }
        for row in rows
    ]


def _moderation(since: datetime, *, hourly: bool) -> list[dict[str, Any]]:
    """Decisions (block, flag, redact: the event log) per category per bucket; an event with
    two categories counts once in each."""
    unit = "hour" if hourly else "day"
    table = ModerationEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT date_trunc(%s, created_at AT TIME ZONE 'UTC') AS bucket, category, count(*)
            FROM {table}, jsonb_array_elements_text(categories) AS category
            WHERE created_at >= %s
            GROUP BY bucket, category
            ORDER BY bucket, category
            """,  # noqa: S608 - the table name comes from the model, not from input
            [unit, since],
        )
        rows = cursor.fetchall()
    return [
        {"bucket": _iso(bucket.replace(tzinfo=UTC)), "category": c, "events": int(n)}
        for bucket, c, n in rows
    ]


def _queues() -> list[dict[str, Any]]:
    models = list(LanguageModel.objects.filter(enabled=True).order_by("name"))
    try:
        depths = waiting.depths(queues=[model.queue for model in models])
    except Exception:  # Redis away: the rest of the dashboard still shows
        logger.warning("could not read the queue depths", exc_info=True)
        return [{"model": m.name, "queue": m.queue, "waiting": None} for m in models]
    return [{"model": m.name, "queue": m.queue, "waiting": depths[m.queue]} for m in models]


def _websockets() -> float | None:
    """Open websockets summed over the living web processes (the `/metrics` gauge)."""
    try:
        text = exposition().decode("utf-8")
    except Exception:
        logger.warning("could not read the metrics", exc_info=True)
        return None
    for family in text_string_to_metric_families(text):
        if family.name == "chat_websocket_connections":
            return float(sum(sample.value for sample in family.samples))
    return None


def _live() -> dict[str, int]:
    documents = chat_selectors.generation_list_live(
        states=(STREAMING, QUEUED), limit=LIVE_COUNT_MAX
    )
    running = sum(1 for d in documents if d.get("state") == STREAMING)
    return {"running": running, "queued": len(documents) - running}


def dashboard_stats(*, hours: int, now: datetime | None = None) -> dict[str, Any]:
    """Everything the dashboard draws, over the last `hours` hours."""
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    hourly = hours <= HOURLY_UP_TO_HOURS
    trunc = TruncHour("created_at") if hourly else TruncDay("created_at")
    records = UsageRecord.objects.filter(created_at__gte=since)
    top = usage_grouped(group_by="user", since=since)[:TOP_USERS]
    return {
        "window": {
            "since": _iso(since),
            "until": _iso(now),
            "hours": hours,
            "bucket": "hour" if hourly else "day",
        },
        "usage_by_model": _usage_over_time(records, trunc, "model"),
        "usage_by_plan": _usage_over_time(records, trunc, "plan"),
        "top_users": list(usage_group_rows(iter(top), group_by="user")),
        "latency": _latency(records),
        "queues": _queues(),
        "live": _live(),
        "moderation": _moderation(since, hourly=hourly),
        "websockets": _websockets(),
    }
