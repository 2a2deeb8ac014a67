"""Bearer tokens: how they are made, stored, found, expired and revoked (services, selectors)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django import Settings

from accounts.models import TOKEN_MARKER, ApiToken, User, token_hash
from accounts.selectors import LAST_USED_RESOLUTION, user_for_token
from accounts.services import token_issue, token_revoke
from config.errors import ApiError

pytestmark = pytest.mark.django_db


def test_token_hash_is_sha256_hex_of_the_raw_token() -> None:
    assert token_hash("chat_abc") == hashlib.sha256(b"chat_abc").hexdigest()


def test_issued_token_is_random_marked_and_stored_only_as_its_hash(user: User) -> None:
    raw, record = token_issue(user=user, name="phone")
    other, _ = token_issue(user=user)

    assert raw.startswith(TOKEN_MARKER) and raw != other
    assert len(raw) >= len(TOKEN_MARKER) + 43  # 32 random bytes, base64url
    record.refresh_from_db()
    assert record.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert record.prefix == raw[: len(record.prefix)] and len(record.prefix) < 16
    stored = [str(value) for value in ApiToken.objects.values_list().get(pk=record.pk)]
    assert raw not in stored
    assert record.name == "phone"


def test_token_expires_after_the_configured_ttl(user: User, settings: Settings) -> None:
    settings.AUTH_TOKEN_TTL_DAYS = 7
    before = timezone.now()
    _, record = token_issue(user=user)
    assert before + timedelta(days=7) <= record.expires_at <= timezone.now() + timedelta(days=7)


def test_live_token_finds_its_user(user: User) -> None:
    raw, _ = token_issue(user=user)
    assert user_for_token(raw_token=raw) == user


@pytest.mark.parametrize(
    "raw",
    ["", "chat_unknown", "not-even-marked", "chat_" + "x" * 500],
    ids=["empty", "unknown", "no-marker", "oversized"],
)
def test_unknown_or_malformed_token_finds_nobody(user: User, raw: str) -> None:
    token_issue(user=user)
    assert user_for_token(raw_token=raw) is None


def test_expired_token_finds_nobody(user: User) -> None:
    raw, record = token_issue(user=user)
    ApiToken.objects.filter(pk=record.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert user_for_token(raw_token=raw) is None


def test_revoked_token_finds_nobody_and_revoking_twice_reports_false(user: User) -> None:
    raw, record = token_issue(user=user)

    assert token_revoke(raw_token=raw) is True
    assert token_revoke(raw_token=raw) is False

    record.refresh_from_db()
    assert record.revoked_at is not None
    assert user_for_token(raw_token=raw) is None


def test_revoking_an_unknown_token_changes_nothing(user: User) -> None:
    raw, _ = token_issue(user=user)
    assert token_revoke(raw_token=raw + "x") is False
    assert user_for_token(raw_token=raw) == user


def test_token_of_a_deactivated_user_finds_nobody(user: User) -> None:
    raw, _ = token_issue(user=user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert user_for_token(raw_token=raw) is None


def test_disabled_user_cannot_get_a_token(make_user: Callable[..., User]) -> None:
    disabled = make_user(is_active=False)
    with pytest.raises(ApiError) as raised:
        token_issue(user=disabled)
    assert raised.value.code == "forbidden"
    assert not ApiToken.objects.exists()


def test_last_used_is_written_on_first_use_then_at_most_once_a_minute(user: User) -> None:
    raw, record = token_issue(user=user)
    assert record.last_used_at is None

    user_for_token(raw_token=raw)
    record.refresh_from_db()
    first_use = record.last_used_at
    assert first_use is not None

    user_for_token(raw_token=raw)
    record.refresh_from_db()
    assert record.last_used_at == first_use  # within the minute: no write

    stale = timezone.now() - LAST_USED_RESOLUTION - timedelta(seconds=1)
    ApiToken.objects.filter(pk=record.pk).update(last_used_at=stale)
    user_for_token(raw_token=raw)
    record.refresh_from_db()
    assert record.last_used_at is not None and record.last_used_at > stale


def test_a_new_password_revokes_every_token_of_its_user_only(
    user: User, make_user: Callable[..., User]
) -> None:
    phone, _ = token_issue(user=user, name="phone")
    laptop, _ = token_issue(user=user, name="laptop")
    other_user = make_user()
    others, _ = token_issue(user=other_user)

    user.set_password("a brand new passphrase 42")
    user.save()

    assert user_for_token(raw_token=phone) is None
    assert user_for_token(raw_token=laptop) is None
    assert user_for_token(raw_token=others) == other_user
    fresh, _ = token_issue(user=user)  # signing in again works
    assert user_for_token(raw_token=fresh) == user


def test_saves_that_keep_the_password_keep_the_tokens(user: User, settings: Settings) -> None:
    from django.contrib.auth.hashers import make_password

    raw, _ = token_issue(user=user)

    user.display_name = "Renamed"
    user.save()
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    # A login that re-hashes the same password under newer hasher settings is no change.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    user.password = make_password("same passphrase", hasher="md5")
    user.save()
    assert user.check_password("same passphrase")
    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_sha256$")  # it was re-hashed and saved

    assert user_for_token(raw_token=raw) == user
