"""Reads of the accounts domain: who a bearer token belongs to, and the lookup of a live
credential (an account token here, an API key in `api.selectors`) by the hash of its secret."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any, TypeVar, cast

from channels.db import database_sync_to_async
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from accounts.models import TOKEN_MARKER, ApiToken, User, token_hash

# `last_used_at` is for people (which token or key is stale?), not for auditing each request:
# writing it at most once a minute keeps a busy client from costing one UPDATE per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Real tokens are 48 characters and keys 46; anything far longer is not worth hashing.
RAW_SECRET_MAX_LENGTH = 128

Credential = TypeVar("Credential", bound=Model)


def live_credential(
    credentials: QuerySet[Credential], *, raw_secret: Any, marker: str
) -> Credential | None:
    """The live credential among `credentials` whose secret is `raw_secret`: not revoked, not
    expired (no expiry: never), its owner active; else None. `credentials` is a model with
    `key_hash`, `revoked_at`, `expires_at`, `last_used_at` and a `user`, narrowed or joined as
    the caller needs. Records when it was last used."""
    if (
        not isinstance(raw_secret, str)
        or not raw_secret.startswith(marker)
        or len(raw_secret) > RAW_SECRET_MAX_LENGTH
    ):
        return None
    now = timezone.now()
    # key_hash is unique: a slice, not first(), whose ORDER BY is work for nothing (this
    # lookup is most of a websocket handshake's CPU).
    found = credentials.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        key_hash=token_hash(raw_secret),
        revoked_at__isnull=True,
        user__is_active=True,
    )[:1]
    credential = next(iter(found), None)
    if credential is None:
        return None
    used = cast(Any, credential)  # the fields named in the docstring
    if used.last_used_at is None or now - used.last_used_at >= LAST_USED_RESOLUTION:
        # A filtered UPDATE, not save(): concurrent requests do not overwrite other columns
        # (a revocation racing with this request stays revoked).
        credentials.model._default_manager.filter(pk=credential.pk).update(last_used_at=now)
        used.last_used_at = now
    return credential


def user_for_token(*, raw_token: str) -> User | None:
    """The active owner of a live (not expired, not revoked) token, else None."""
    token = live_credential(
        ApiToken.objects.select_related("user"), raw_secret=raw_token, marker=TOKEN_MARKER
    )
    return None if token is None else token.user


# Off Channels' one shared thread (as accounts.ws_auth's session lookup): a storm of
# connections authenticates on the pool's threads, whose database round trips overlap.
@functools.partial(database_sync_to_async, thread_sensitive=False)
def auser_for_token(*, raw_token: str) -> User | None:
    """`user_for_token` for async code (websocket consumers, ASGI middleware)."""
    return user_for_token(raw_token=raw_token)
