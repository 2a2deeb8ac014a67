"""Writes of the API app: issuing and revoking keys, and marking a generation as the API's."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from accounts.models import User, token_hash
from api.models import KEY_MARKER, KEY_PREFIX_LENGTH, SCOPES, ApiGeneration, ApiKey
from config.errors import ApiError

KEY_NAME_MAX_LENGTH = 100


def _invalid(field: str, problem: str) -> ApiError:
    return ApiError("bad_request", f"{field}: {problem}", fields={field: [problem]})


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise _invalid("name", "a non-empty string is required")
    cleaned = " ".join(name.split())
    if len(cleaned) > KEY_NAME_MAX_LENGTH:
        raise _invalid("name", f"at most {KEY_NAME_MAX_LENGTH} characters")
    return cleaned


def _clean_scopes(scopes: Any) -> list[str]:
    if scopes is None:
        return list(SCOPES)
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise _invalid("scopes", f"a non-empty list of: {', '.join(SCOPES)}")
    unknown = sorted({scope for scope in scopes if scope not in SCOPES})
    if unknown:
        raise _invalid("scopes", f"unknown scope(s) {', '.join(unknown)}; use {', '.join(SCOPES)}")
    return [scope for scope in SCOPES if scope in scopes]  # one order, no repeats


def _clean_expiry(days: Any) -> int | None:
    limit = settings.API_KEY_MAX_EXPIRY_DAYS
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= limit:
        raise _invalid("expires_in_days", f"an integer from 1 to {limit}, or null (never)")
    return days


def api_key_create(
    *,
    user: User,
    name: Any,
    scopes: Any = None,
    expires_in_days: Any = None,
    store_conversations: Any = False,
) -> tuple[str, ApiKey]:
    """A new key for `user`: (the raw key, shown once; its record, which stores only its hash).
    Raises `ApiError` naming the field at fault, or `conflict` at the per-user limit."""
    cleaned_name = _clean_name(name)
    cleaned_scopes = _clean_scopes(scopes)
    days = _clean_expiry(expires_in_days)
    if not isinstance(store_conversations, bool):
        raise _invalid("store_conversations", "true or false")
    limit = settings.API_KEYS_PER_USER
    if ApiKey.objects.filter(user=user, revoked_at__isnull=True).count() >= limit:
        raise ApiError("conflict", f"At most {limit} keys per user: revoke one first.")
    now = timezone.now()
    for _ in range(3):
        raw = KEY_MARKER + secrets.token_urlsafe(32)  # 256 random bits
        try:
            record = ApiKey.objects.create(
                user=user,
                name=cleaned_name,
                prefix=raw[:KEY_PREFIX_LENGTH],
                key_hash=token_hash(raw),
                scopes=cleaned_scopes,
                store_conversations=store_conversations,
                created_at=now,
                expires_at=None if days is None else now + timedelta(days=days),
            )
        except IntegrityError:  # a hash collision: practically never
            continue
        return raw, record
    raise RuntimeError("could not issue a unique API key")


def api_key_revoke(*, user_id: int, key_id: int) -> bool:
    """Revoke the user's key at once. False: no such live key of theirs."""
    updated = ApiKey.objects.filter(pk=key_id, user_id=user_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    return updated == 1


def api_generation_record(
    *, generation_id: str, key: ApiKey, model: str, stream: bool
) -> ApiGeneration:
    """Mark an admitted generation as the API's, asked for with `key`."""
    return ApiGeneration.objects.create(
        generation_id=generation_id, key=key, user_id=key.user_id, model=model, stream=stream
    )
