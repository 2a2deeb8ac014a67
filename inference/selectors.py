"""Reads of the model registry and of usage records."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sized
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.plans import PlanLimits
from inference.models import LanguageModel, UsageRecord


def model_get_enabled(*, name: str | None) -> LanguageModel | None:
    """The enabled model called `name`, or the default model when `name` is None."""
    models = LanguageModel.objects.filter(enabled=True)
    if name is None:
        return models.filter(is_default=True).first()
    return models.filter(name=name).first()


def model_list_enabled() -> list[LanguageModel]:
    """Every enabled model, the default first, then by name."""
    return list(LanguageModel.objects.filter(enabled=True).order_by("-is_default", "name"))


def model_list_allowed(*, plan: PlanLimits | None) -> list[LanguageModel]:
    """The enabled models `plan` allows (None: every enabled one), the default first."""
    return [m for m in model_list_enabled() if plan is None or plan.allows_model(m.name)]


def auto_offered(models: Sized) -> bool:
    """Whether `model: "auto"` is offered to a user whose plan allows `models` (enabled ones):
    when there is a choice to make, two models or more. `/api/models`, `/v1/models` and the
    browser's picker (`offersAuto` in frontend/src/state/models.ts) follow this one rule."""
    return len(models) > 1


def model_list_served(*, names: str) -> list[LanguageModel]:
    """The models a deployment serves: the enabled ones among `names` (comma-separated
    registry names, in that order), or the default model when `names` is empty."""
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    if not wanted:
        default = model_get_enabled(name=None)
        return [default] if default is not None else []
    enabled = {m.name: m for m in LanguageModel.objects.filter(enabled=True, name__in=wanted)}
    return [enabled[name] for name in dict.fromkeys(wanted) if name in enabled]


# The sums of every usage row (read each row with `usage_row`).
USAGE_SUMS = {
    "generations": Count("id"),
    "prompt_tokens": Sum("prompt_tokens"),
    "completion_tokens": Sum("completion_tokens"),
    "cost": Sum("cost"),
}


def usage_summary(*, user_id: int, since: date) -> dict[str, Any]:
    """The user's tokens and cost since `since` (inclusive, UTC days): per day, per model, per
    source (every source, the websocket's first, with zeros where none) and in total.
    Owner-scoped: only `user_id`'s records are read."""
    records = UsageRecord.objects.filter(user_id=user_id, created_at__date__gte=since)
    by_day = records.annotate(day=TruncDate("created_at")).values("day")
    per_day = by_day.annotate(**USAGE_SUMS)
    per_model = records.values("model").annotate(**USAGE_SUMS)
    per_source = {row["source"]: row for row in records.values("source").annotate(**USAGE_SUMS)}
    return {
        "per_day": [usage_row(row, key="day") for row in per_day.order_by("-day")],
        "per_model": [usage_row(row, key="model") for row in per_model.order_by("model")],
        "per_source": [
            usage_row(per_source.get(source, {"source": source}), key="source")
            for source in UsageRecord.Source.values
        ],
        "total": usage_row(records.aggregate(**USAGE_SUMS), key=None),
    }


def usage_tokens_today(*, user_id: int) -> int:
    """Tokens (prompt and completion) the user consumed since midnight UTC."""
    today = timezone.now().date()
    totals = UsageRecord.objects.filter(user_id=user_id, created_at__date=today).aggregate(
        prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens")
    )
    return int(totals["prompt"] or 0) + int(totals["completion"] or 0)


def usage_row(row: Mapping[str, Any], *, key: str | None) -> dict[str, Any]:
    """A row of `USAGE_SUMS` as the API shows it: generations, prompt, completion and total
    tokens, cost; first the row's group when `key` names one (`day`, `plan`, `user`, or a
    column such as `model` or `source`)."""
    prompt = int(row.get("prompt_tokens") or 0)
    completion = int(row.get("completion_tokens") or 0)
    out: dict[str, Any] = {}
    if key == "day":
        out["date"] = row["day"].isoformat()
    elif key == "plan":
        out["plan"] = row["plan"] or None  # None: not known (`UsageRecord.plan`)
    elif key == "user":
        out["user_id"], out["email"] = row["user_id"], row["user__email"]
    elif key is not None:  # "model", "source": the column of that name
        out[key] = row[key]
    out.update(
        generations=int(row.get("generations") or 0),
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cost=float(row.get("cost") or Decimal(0)),
    )
    return out


# What each grouping groups by: the record's columns (a record keeps the plan it was billed
# under, `UsageRecord.plan`).
USAGE_GROUPS: dict[str, tuple[str, ...]] = {
    "model": ("model",),
    "plan": ("plan",),
    "user": ("user_id", "user__email"),
    "day": ("day",),
}


def usage_grouped(
    *, group_by: str, since: datetime, until: datetime | None = None
) -> QuerySet[UsageRecord, dict[str, Any]]:
    """Every user's usage records created in [since, until), grouped by `group_by` (one of
    USAGE_GROUPS): generations, tokens and cost per group. Days newest first; other groups by
    cost, then tokens, highest first. For the staff console: not owner-scoped. Rows go through
    `usage_group_rows`."""
    records = UsageRecord.objects.filter(created_at__gte=since)
    if until is not None:
        records = records.filter(created_at__lt=until)
    if group_by == "day":
        records = records.annotate(day=TruncDate("created_at"))
    keys = USAGE_GROUPS[group_by]
    # The total first: the sums named like the columns would shadow them in its expression.
    grouped = (
        records.values(*keys)
        .annotate(total=Sum(F("prompt_tokens") + F("completion_tokens")))
        .annotate(**USAGE_SUMS)
    )
    if group_by == "day":
        return grouped.order_by("-day")
    return grouped.order_by("-cost", "-total", *keys)


def usage_group_rows(rows: Iterator[Mapping[str, Any]], *, group_by: str) -> Iterator[dict]:
    """`usage_grouped`'s rows as JSON objects: the group's key fields, `generations`,
    `prompt_tokens`, `completion_tokens`, `total_tokens` and `cost`."""
    for row in rows:
        yield usage_row(row, key=group_by)
