"""Throttling of failed logins and of registrations (per client IP), in the Django cache.

Failed logins count three ways (issue 15, finding 7, "targeted lockout"):
- per email *and* client address, `LOGIN_FAILURE_LIMIT` (5): what slows down one guesser;
- per email from anywhere, `LOGIN_FAILURE_EMAIL_LIMIT` (much higher): the ceiling on guesses
  spread over many addresses;
- per client address, `LOGIN_FAILURE_IP_LIMIT`: one address guessing across many accounts.
So someone elsewhere who types a victim's email with wrong passwords blocks only themselves: the
owner, from their own address, still signs in, until the per-email ceiling is reached.

A small counter rather than django-ratelimit: that library counts *requests* in windows aligned
to the clock and cannot tell the caller when the block ends. Here only *failures* count (a
person who types the right password is never slowed down by their own successes), the window
starts at the first failure, and a blocked client is told exactly when to retry (Retry-After).
While blocked, the password is not checked at all, so guessing continues to cost nothing but
also learns nothing.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache

from accounts.models import normalize_email
from config.errors import ApiError

_KEY_ROOT = "accounts:login-failures"


def _email_key(email: str) -> str:
    # Hashed: keys stay short and printable whatever the client sent, and Redis holds no emails.
    digest = hashlib.sha256(normalize_email(email).encode("utf-8")).hexdigest()
    return f"{_KEY_ROOT}:email:{digest}"


def _ip_key(ip: str) -> str:
    return f"{_KEY_ROOT}:ip:{ip or 'unknown'}"


def _pair_key(email: str, ip: str) -> str:
    return f"{_email_key(email)}:ip:{ip or 'unknown'}"


def _seconds_left(key: str) -> int | None:
    """Seconds until `key`'s window ends, or None when it has no window (or it just ended)."""
    reset_at = cache.get(f"{key}:reset-at")
    if reset_at is None:
        return None
    left = math.ceil(float(reset_at) - time.time())
    return left if left > 0 else None


def _blocked_for(key: str, limit: int) -> int | None:
    count = cache.get(key)
    if count is None or int(count) < limit:
        return None
    # At least one second: a client told "retry after 0" would hammer the endpoint.
    return max(_seconds_left(key) or 1, 1)


def login_throttle_check(*, email: str, ip: str) -> None:
    """Raise `rate_limited` (HTTP 429 with Retry-After) when this email from this address,
    this email from anywhere (its higher ceiling) or this address is blocked."""
    waits = [
        _blocked_for(_pair_key(email, ip), settings.LOGIN_FAILURE_LIMIT),
        _blocked_for(_email_key(email), settings.LOGIN_FAILURE_EMAIL_LIMIT),
        _blocked_for(_ip_key(ip), settings.LOGIN_FAILURE_IP_LIMIT),
    ]
    blocked = [wait for wait in waits if wait is not None]
    if blocked:
        retry_after = max(blocked)
        raise ApiError(
            "rate_limited",
            f"Too many failed sign-in attempts. Try again in {retry_after} seconds.",
            retry_after=retry_after,
        )


def _count(key: str, *, window: int | None = None) -> None:
    window = window or settings.LOGIN_FAILURE_WINDOW_SECONDS
    # `add` only sets missing keys: the window is fixed by the first failure, and later
    # failures do not extend it. Both keys carry the same timeout so they expire together.
    if cache.add(key, 0, timeout=window):
        cache.set(f"{key}:reset-at", time.time() + window, timeout=window)
    try:
        cache.incr(key)
    except ValueError:
        # The window ended between `add` and `incr`: this failure opens a new one.
        cache.set(key, 1, timeout=window)
        cache.set(f"{key}:reset-at", time.time() + window, timeout=window)


def login_failure_record(*, email: str, ip: str) -> None:
    _count(_pair_key(email, ip))
    _count(_email_key(email))
    _count(_ip_key(ip))


def login_failures_clear(*, email: str, ip: str) -> None:
    """Forget this email's failures from this address after a successful login.

    The IP counter is kept on purpose: otherwise one address could interleave logins to its own
    account with guesses at others and never be blocked. So is the per-email ceiling: each of
    the owner's logins would otherwise give guessers spread over many addresses a fresh budget.
    """
    key = _pair_key(email, ip)
    cache.delete_many([key, f"{key}:reset-at"])


def _registration_key(ip: str) -> str:
    return f"accounts:registrations:ip:{ip or 'unknown'}"


def registration_throttle(*, ip: str) -> None:
    """Count one registration attempt from `ip`; raise `rate_limited` (HTTP 429, Retry-After)
    past `REGISTRATION_IP_LIMIT` attempts in `REGISTRATION_WINDOW_SECONDS`. Attempts count,
    not only successes: probing which emails exist is what the limit is for, as is mass
    account creation."""
    key = _registration_key(ip)
    wait = _blocked_for(key, settings.REGISTRATION_IP_LIMIT)
    if wait is not None:
        raise ApiError(
            "rate_limited",
            f"Too many new accounts from this address. Try again in {wait} seconds.",
            retry_after=wait,
        )
    _count(key, window=settings.REGISTRATION_WINDOW_SECONDS)


def client_ip(request_meta: dict[str, str]) -> str:
    """The client's address. config.proxy has already put it into REMOTE_ADDR: the peer, or,
    behind one of TRUSTED_PROXIES, the right-most untrusted X-Forwarded-For hop."""
    return request_meta.get("REMOTE_ADDR", "") or "unknown"
