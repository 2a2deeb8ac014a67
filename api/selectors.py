"""Reads of the API app: a user's keys, and the live key behind a raw one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import token_hash
from api.models import KEY_MARKER, ApiKey

# `last_used_at` is for people (which key is stale?): written at most once a minute, so that a
# busy client does not cost one UPDATE per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Real keys are 46 characters; anything far longer is not worth hashing.
RAW_KEY_MAX_LENGTH = 128


def api_key_list(*, user_id: int) -> QuerySet[ApiKey]:
    """The user's keys that are not revoked, newest first (expired ones included)."""
    return ApiKey.objects.filter(user_id=user_id, revoked_at__isnull=True)


def api_key_authenticate(*, raw_key: Any) -> ApiKey | None:
    """The live key (not revoked, not expired, owner active) for `raw_key`, with its user;
    else None. Records when it was last used."""
    if (
        not isinstance(raw_key, str)
        or not raw_key.startswith(KEY_MARKER)
        or len(raw_key) > RAW_KEY_MAX_LENGTH
    ):
        return None
    now = timezone.now()
    key = (
        ApiKey.objects.select_related("user")
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
