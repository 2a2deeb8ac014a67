"""Reads of the accounts domain: who a bearer token belongs to."""

from __future__ import annotations

import functools
from datetime import timedelta

from channels.db import database_sync_to_async
from django.utils import timezone

from accounts.models import TOKEN_MARKER, ApiToken, User, token_hash

# `last_used_at` is for people (which token is stale?), not for auditing each request:
# writing it at most once a minute keeps a busy client from costing one UPDATE per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Real tokens are 48 characters; anything far longer is not worth hashing.
_RAW_TOKEN_MAX_LENGTH = 128


def user_for_token(*, raw_token: str) -> User | None:
    """The active owner of a live (not expired, not revoked) token, else None."""
    if (
        not isinstance(raw_token, str)
        or not raw_token.startswith(TOKEN_MARKER)
        or len(raw_token) > _RAW_TOKEN_MAX_LENGTH
    ):
        return None
    now = timezone.now()
    token = (
        ApiToken.objects.select_related("user")
        .filter(
            key_hash=token_hash(raw_token),
            revoked_at__isnull=True,
            expires_at__gt=now,
            user__is_active=True,
        )
        .first()
    )
    if token is None:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        # A filtered UPDATE, not save(): concurrent requests do not overwrite other columns
        # (a revocation racing with this request stays revoked).
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


# Off Channels' one shared thread (as accounts.ws_auth's session lookup): a storm of
# connections authenticates on the pool's threads, whose database round trips overlap.
@functools.partial(database_sync_to_async, thread_sensitive=False)
def auser_for_token(*, raw_token: str) -> User | None:
    """`user_for_token` for async code (websocket consumers, ASGI middleware)."""
    return user_for_token(raw_token=raw_token)
