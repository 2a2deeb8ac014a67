"""Reads for the review queue."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from moderation.models import ModerationEvent


def event_list(
    *,
    review_status: str | None = None,
    category: str | None = None,
    direction: str | None = None,
    check_name: str | None = None,
    since: datetime | None = None,
) -> QuerySet[ModerationEvent]:
    events = ModerationEvent.objects.select_related("user").order_by("-created_at")
    if review_status:
        events = events.filter(review_status=review_status)
    if category:
        events = events.filter(categories__contains=[category])
    if direction:
        events = events.filter(direction=direction)
    if check_name:
        events = events.filter(check_name=check_name)
    if since:
        events = events.filter(created_at__gte=since)
    return events


def event_counts_per_category_per_day(*, days: int = 30) -> list[tuple[date, str, int]]:
    """(day, category, events) for the last `days` days, newest day first. An event with two
    categories counts once in each."""
    since = timezone.now() - timedelta(days=days)
    table = ModerationEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT (created_at AT TIME ZONE 'UTC')::date AS day, category, count(*)
            FROM {table}, jsonb_array_elements_text(categories) AS category
            WHERE created_at >= %s
            GROUP BY day, category
            ORDER BY day DESC, category
            """,  # noqa: S608 - the table name comes from the model, not from input
            [since],
        )
        return [(row[0], row[1], int(row[2])) for row in cursor.fetchall()]
