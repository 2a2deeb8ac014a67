"""Reads of the API app: a user's keys, the live key behind a raw one, and what each key used."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Count, F, QuerySet, Sum

from accounts.selectors import live_credential
from api.models import KEY_MARKER, ApiKey
from inference.models import UsageRecord
from inference.selectors import USAGE_SUMS, usage_row

# At most this many keys in a usage report's `per_key` (the most used first): a user may hold
# API_KEYS_PER_USER live keys, but revoked ones keep their bills.
USAGE_KEYS_MAX = 50


def api_key_list(*, user_id: int) -> QuerySet[ApiKey]:
    """The user's keys that are not revoked, newest first (expired ones included)."""
    return ApiKey.objects.filter(user_id=user_id, revoked_at__isnull=True)


def api_key_authenticate(*, raw_key: Any) -> ApiKey | None:
    """The live key (not revoked, not expired, owner active) for `raw_key`, with its user and
    the user's plan (read in the same query: `/v1/` checks models against it); else None.
    Records when it was last used."""
    return live_credential(
        ApiKey.objects.select_related("user__plan"), raw_secret=raw_key, marker=KEY_MARKER
    )


def api_key_usage(*, user_id: int) -> dict[int, dict[str, Any]]:
    """What each of the user's keys has consumed, from the bills of its generations (the
    worker's `inference.UsageRecord`, which carries the key that asked): key id ->
    generations, prompt and completion tokens, cost."""
    rows = (
        UsageRecord.objects.filter(user_id=user_id, api_key_id__isnull=False)
        .values("api_key_id")
        .annotate(
            generations=Count("id"),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            cost=Sum("cost"),
        )
    )
    return {
        row["api_key_id"]: {
            "generations": row["generations"],
            "prompt_tokens": int(row["prompt_tokens"] or 0),
            "completion_tokens": int(row["completion_tokens"] or 0),
            "cost": float(row["cost"] or 0),
        }
        for row in rows
    }


def api_key_usage_since(
    *, user_id: int, since: date, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """What each of the user's keys consumed since `since` (inclusive, UTC days), the keys
    with bills in that period only, the most tokens first, at most `limit` of them: (rows,
    whether keys were left out). A row is `usage_row`'s sums after the key's `key_id`,
    `name`, `prefix` and `revoked`. Owner-scoped: both queries read `user_id`'s rows only."""
    grouped = (
        UsageRecord.objects.filter(
            user_id=user_id, api_key_id__isnull=False, created_at__date__gte=since
        )
        .values("api_key_id")
        # The total first: the sums named like the columns would shadow them in its expression.
        .annotate(total=Sum(F("prompt_tokens") + F("completion_tokens")))
        .annotate(**USAGE_SUMS)
        .order_by("-total", "api_key_id")
    )
    found = list(grouped[: limit + 1])
    keys: dict[int, dict[str, Any]] = {
        key["id"]: dict(key)
        for key in ApiKey.objects.filter(
            user_id=user_id, pk__in=[row["api_key_id"] for row in found[:limit]]
        ).values("id", "name", "prefix", "revoked_at")
    }
    rows = []
    for row in found[:limit]:
        key = keys.get(row["api_key_id"], {})  # none: a key deleted since
        rows.append(
            {
                "key_id": row["api_key_id"],
                "name": key.get("name"),
                "prefix": key.get("prefix"),
                "revoked": key.get("revoked_at") is not None,
                **usage_row(row, key=None),
            }
        )
    return rows, len(found) > limit
