"""Email verification: the signed link that proves an address, and the two emails that
registration sends (issue 15, finding 9).

Registration answers alike whether the address is new or taken, so what differs goes by email,
to the address's owner only: a new address gets its verification link; a taken one gets a note
that someone tried to register it (or, if that account is still unverified, its link again).
Mail goes through Django's email backend (EMAIL_BACKEND: the console locally, SMTP in
production), after the transaction commits; a mail server that fails is logged, never shown to
the client (that too would tell new from taken).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from config.errors import ApiError

logger = logging.getLogger(__name__)

_SALT = "accounts.email-verification"

# Builds the absolute URL a person opens: from a verification token, or (None) the login page.
LinkBuilder = Callable[[str | None], str]


def verification_token(*, user: User) -> str:
    """A signed, timestamped token naming the account and the address it verifies. It stops
    working once the address is verified or changed, and after EMAIL_VERIFICATION_MAX_AGE_HOURS."""
    return signing.dumps({"user": user.pk, "email": user.email}, salt=_SALT, compress=True)


def email_verify(*, token: str) -> User:
    """Mark the token's address verified; raise `bad_request` for a token that is malformed,
    expired, or for an address that is no longer the account's."""
    invalid = ApiError("bad_request", "This verification link is invalid or has expired.")
    try:
        data = signing.loads(
            token, salt=_SALT, max_age=settings.EMAIL_VERIFICATION_MAX_AGE_HOURS * 3600
        )
    except signing.BadSignature:  # SignatureExpired is one
        raise invalid from None
    if not isinstance(data, dict) or not isinstance(data.get("user"), int):
        raise invalid
    user = User.objects.filter(pk=data["user"], email=data.get("email")).first()
    if user is None:
        raise invalid
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    return user


def _send(*, to: str, subject: str, body: str) -> None:
    def send() -> None:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])
        except Exception:
            logger.exception("could not send %r", subject)

    transaction.on_commit(send)


def verification_email_send(*, user: User, link: LinkBuilder) -> None:
    hours = settings.EMAIL_VERIFICATION_MAX_AGE_HOURS
    _send(
        to=user.email,
        subject="Confirm your email address",
        body=(
            "Someone, hopefully you, created an account with this address.\n\n"
            f"Open this link within {hours} hours to confirm it, then sign in:\n\n"
            f"{link(verification_token(user=user))}\n\n"
            "If it was not you, ignore this email: the account stays unusable."
        ),
    )


def already_registered_email_send(*, email: str, link: LinkBuilder) -> None:
    _send(
        to=email,
        subject="You already have an account",
        body=(
            "Someone, hopefully you, tried to create an account with this address, which "
            "already has one. No new account was made.\n\n"
            f"Sign in here: {link(None)}\n\n"
            "If you forgot your password, ask the service's operator to reset it. If it was not "
            "you, you can ignore this email."
        ),
    )
