"""Reads of the API app: a user's keys, the live key behind a raw one, and what each key used."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import token_hash
from api.models import KEY_MARKER, ApiKey
from inference.models import UsageRecord

# `last_used_at` is for people (which key is stale?): written at most once a minute, so that a
# busy client does not cost one UPDATE per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Real keys are 46 characters; anything far longer is not worth hashing.
RAW_KEY_MAX_LENGTH = 128


def api_key_list(*, user_id: int) -> QuerySet[ApiKey]:
    """The user's keys that are not revoked, newest first (expired ones included)."""
    return ApiKey.objects.filter(user_id=user_id, revoked_at__isnull=True)


def api_key_authenticate(*, raw_key: Any) -> ApiKey | None:
    """The live key (not revoked, not expired, owner active) for `raw_key`, with its user and
    the user's plan (read in the same query: `/v1/` checks models against it); else None.
    Records when it was last used."""
    if (
        not isinstance(raw_key, str)
        or not raw_key.startswith(KEY_MARKER)
        or len(raw_key) > RAW_KEY_MAX_LENGTH
    ):
        return None
    now = timezone.now()
    key = (
        ApiKey.objects.select_related("user__plan")
        .filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now),
            key_hash=token_hash(raw_key),
            revoked_at__isnull=True,
            user__is_active=True,
        )
        .first()
    )
    if key is None:
        return None
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        # A filtered UPDATE, not save(): a revocation racing with this request stays revoked.
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


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
