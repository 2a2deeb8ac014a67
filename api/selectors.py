"""Reads of the API app: a user's keys, the live key behind a raw one, and what each key used."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet, Sum

from accounts.selectors import live_credential
from api.models import KEY_MARKER, ApiKey
from inference.models import UsageRecord


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
