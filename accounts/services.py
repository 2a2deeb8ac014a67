"""Writes of the accounts domain: registering users, checking credentials (which counts failed
attempts), issuing and revoking bearer tokens."""

from __future__ import annotations

import functools
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import (
    TOKEN_DISPLAY_LENGTH,
    TOKEN_MARKER,
    ApiToken,
    User,
    normalize_email,
    token_hash,
)
from accounts.signals import credential_revoked
from accounts.throttle import (
    client_ip,
    login_failure_record,
    login_failures_clear,
    login_throttle_check,
)
from accounts.verification import (
    LinkBuilder,
    already_registered_email_send,
    verification_email_send,
)
from config.errors import ApiError

EMAIL_MAX_LENGTH = 254  # RFC 5321 path limit; also the column's length.
PASSWORD_MAX_LENGTH = 4096  # Hashing megabytes of "password" would be a cheap denial of service.
TOKEN_NAME_MAX_LENGTH = 100


def _clean_email(email: Any, errors: dict[str, list[str]]) -> str:
    if not isinstance(email, str) or not email.strip():
        errors["email"] = ["An email address is required."]
        return ""
    normalized = normalize_email(email)
    if len(normalized) > EMAIL_MAX_LENGTH:
        errors["email"] = [f"An email address has at most {EMAIL_MAX_LENGTH} characters."]
        return normalized
    try:
        validate_email(normalized)
    except ValidationError:
        errors["email"] = ["Enter a valid email address."]
    return normalized


def user_register(*, email: str, password: str, link: LinkBuilder) -> str:
    """Register an account, answering alike for a new and a taken address (no enumeration).

    Invalid input raises `bad_request` (400) with `fields` {"email": [...], "password": [...]}.
    Otherwise the normalised address is returned whether or not it already had an account;
    only its owner learns which, by email (accounts.verification). A new account starts
    unverified while ACCOUNTS_VERIFY_EMAIL is on, and cannot sign in until its link is opened.
    """
    errors: dict[str, list[str]] = {}
    normalized = _clean_email(email, errors)
    if not isinstance(password, str) or password == "":
        errors["password"] = ["A password is required."]
    elif len(password) > PASSWORD_MAX_LENGTH:
        errors["password"] = [f"A password has at most {PASSWORD_MAX_LENGTH} characters."]
    else:
        try:
            # The unsaved user lets UserAttributeSimilarityValidator compare with the email.
            validate_password(password, user=User(email=normalized))
        except ValidationError as error:
            errors["password"] = list(error.messages)
    if errors:
        raise ApiError("bad_request", "The account could not be created.", fields=errors)

    existing = User.objects.filter(email__iexact=normalized).first()
    if existing is None:
        verified_at = None if settings.ACCOUNTS_VERIFY_EMAIL else timezone.now()
        try:
            # Savepoint: a concurrent registration of the same address loses on the unique
            # index without breaking an enclosing transaction.
            with transaction.atomic():
                user = User.objects.create_user(
                    email=normalized, password=password, email_verified_at=verified_at
                )
        except IntegrityError:
            existing = User.objects.filter(email__iexact=normalized).first()
        else:
            if verified_at is None:
                verification_email_send(user=user, link=link)
            return normalized
    # Taken. Hash the password all the same: a reply that comes sooner would tell.
    make_password(password)
    if existing is not None and existing.email_verified_at is None:
        verification_email_send(user=existing, link=link)  # its owner may have lost the first
    else:
        already_registered_email_send(email=normalized, link=link)
    return normalized


def token_issue(*, user: User, name: str = "") -> tuple[str, ApiToken]:
    """A new bearer token for `user`: the raw token (shown once, never stored) and its record."""
    if not user.is_active:
        raise ApiError("forbidden", "This account is disabled.")
    raw_token = TOKEN_MARKER + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        key_hash=token_hash(raw_token),
        prefix=raw_token[:TOKEN_DISPLAY_LENGTH],
        name=name[:TOKEN_NAME_MAX_LENGTH],
        expires_at=timezone.now() + timedelta(days=settings.AUTH_TOKEN_TTL_DAYS),
    )
    return raw_token, token


def token_revoke(*, raw_token: str) -> bool:
    """Revoke the token; True when a live token was revoked by this call."""
    return token_revoke_many(tokens=ApiToken.objects.filter(key_hash=token_hash(raw_token))) > 0


def token_revoke_many(*, tokens: QuerySet[ApiToken]) -> int:
    """Revoke every live token in `tokens` (admin action); returns how many were revoked.
    Whatever they authenticated (open websockets) is told at once (`credential_revoked`)."""
    with transaction.atomic():
        live = list(
            tokens.filter(revoked_at__isnull=True)
            .select_for_update()
            .values_list("pk", "user_id", "key_hash")
        )
        ApiToken.objects.filter(pk__in=[pk for pk, _, _ in live]).update(revoked_at=timezone.now())
        for _, user_id, key_hash in live:
            transaction.on_commit(
                functools.partial(
                    credential_revoked.send,
                    sender=ApiToken,
                    user_id=user_id,
                    credential=f"bearer:{key_hash}",
                )
            )
    return len(live)


def user_authenticate(*, request: HttpRequest, email: Any, password: Any) -> User:
    """The user these credentials belong to, with failed attempts throttled.

    Raises `bad_request` for missing fields, `rate_limited` (429, Retry-After) while the email
    from this address, the email from anywhere or the client address is blocked (the password
    is then not checked at all), and `unauthorized` for wrong credentials or a disabled account
    (one message for both: no account enumeration).
    """
    errors: dict[str, list[str]] = {}
    if not isinstance(email, str) or not email.strip():
        errors["email"] = ["An email address is required."]
    if not isinstance(password, str) or password == "":
        errors["password"] = ["A password is required."]
    if errors:
        raise ApiError("bad_request", "Email and password are required.", fields=errors)
    assert isinstance(email, str) and isinstance(password, str)  # for the type checker

    ip = client_ip(request.META)
    login_throttle_check(email=email, ip=ip)
    user = None
    if len(password) <= PASSWORD_MAX_LENGTH:
        user = authenticate(request, email=normalize_email(email), password=password)
    if isinstance(user, User) and settings.ACCOUNTS_VERIFY_EMAIL and not user.email_verified_at:
        # Refused like a wrong password, and counted like one: anything else would tell the
        # person who registered an address (and so knows its password) that it was new.
        user = None
    if not isinstance(user, User):
        login_failure_record(email=email, ip=ip)
        raise ApiError("unauthorized", "The email address or password is incorrect.")
    login_failures_clear(email=email, ip=ip)
    return user
