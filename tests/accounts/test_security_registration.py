"""Issue 15, finding 9: registration does not tell whether an address has an account, and a
new account is verified by email (Django's email backend) before it can sign in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core import mail, signing
from django.test import Client, TestCase
from pytest_django import Settings

from accounts import services
from accounts.models import User
from tests.accounts.conftest import PASSWORD
from tests.accounts.helpers import post_json

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
NEW_PASSWORD = "another long passphrase 9"
LINK = re.compile(r"http://testserver(/api/auth/verify-email\?token=\S+)")


@pytest.fixture(autouse=True)
def verification_on(settings: Settings) -> None:
    settings.ACCOUNTS_VERIFY_EMAIL = True
    settings.LOGIN_FAILURE_LIMIT = 3


def register(email: str, password: str = NEW_PASSWORD) -> Any:
    # Each test runs in a transaction that never commits: run what registration leaves for
    # the commit (its emails) as the request ends, as a real commit would.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return post_json(Client(), "/api/auth/register", {"email": email, "password": password})


def token_login(email: str, password: str) -> Any:
    return post_json(Client(), "/api/auth/token", {"email": email, "password": password})


def verification_path(message: mail.EmailMessage) -> str:
    match = LINK.search(str(message.body))
    assert match, message.body
    return match.group(1)


@pytest.mark.parametrize("verify", [True, False])
def test_a_taken_address_is_answered_exactly_like_a_new_one(
    user: User, settings: Settings, verify: bool
) -> None:
    settings.ACCOUNTS_VERIFY_EMAIL = verify

    new = register("grace@example.org")
    taken = register(user.email.upper())

    assert (new.status_code, taken.status_code) == (201, 201)
    assert new.json() == {"email": "grace@example.org", "email_verification_required": verify}
    assert taken.json() == {"email": user.email, "email_verification_required": verify}
    assert set(new.cookies) == set(taken.cookies) == set()
    assert sorted(new.headers) == sorted(taken.headers)


def test_a_taken_address_costs_a_password_hash_like_a_new_one(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    real = services.make_password
    monkeypatch.setattr(services, "make_password", lambda p: hashed.append(p) or real(p))

    register(user.email)

    assert hashed == [NEW_PASSWORD]


def test_what_differs_goes_only_to_the_address_by_email(user: User) -> None:
    register("grace@example.org")
    register(user.email)

    first, second = mail.outbox
    assert first.to == ["grace@example.org"] and "Confirm your email" in first.subject
    assert LINK.search(str(first.body))
    assert second.to == [user.email] and "already have an account" in second.subject
    assert not LINK.search(str(second.body))
    assert User.objects.count() == 2
    user.refresh_from_db()
    assert user.check_password(PASSWORD)  # the owner's password is untouched


def test_a_new_account_signs_in_only_after_its_link_is_opened() -> None:
    register("grace@example.org")
    before = token_login("grace@example.org", NEW_PASSWORD)

    opened = Client().get(verification_path(mail.outbox[0]))
    after = token_login("grace@example.org", NEW_PASSWORD)

    assert before.status_code == 401
    assert before.json() == token_login("grace@example.org", "wrong password").json()
    assert opened.status_code == 302 and opened["Location"] == "/login?verified=1"
    assert after.status_code == 201
    assert User.objects.get(email="grace@example.org").email_verified_at is not None


def test_signing_in_before_verifying_counts_like_a_wrong_password(user: User) -> None:
    # Whoever registered an address knows the password they gave. Were unverified sign-ins not
    # counted, only a new address would never be throttled: a way to tell new from taken.
    register("grace@example.org")
    register(user.email)
    for _ in range(3):
        token_login("grace@example.org", NEW_PASSWORD)
        token_login(user.email, NEW_PASSWORD)

    assert token_login("grace@example.org", NEW_PASSWORD).status_code == 429
    assert token_login(user.email, NEW_PASSWORD).status_code == 429


def test_registering_a_pending_address_again_resends_its_link_and_keeps_its_password() -> None:
    register("grace@example.org", NEW_PASSWORD)
    register("grace@example.org", "an attackers passphrase 1")

    assert [m.to for m in mail.outbox] == [["grace@example.org"]] * 2
    Client().get(verification_path(mail.outbox[1]))
    assert token_login("grace@example.org", NEW_PASSWORD).status_code == 201
    assert token_login("grace@example.org", "an attackers passphrase 1").status_code == 401


@pytest.mark.parametrize("tamper", ["garbage", "flip", "other-address", "expired"])
def test_a_bad_verification_link_verifies_nothing(
    tamper: str, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    register("grace@example.org")
    path = verification_path(mail.outbox[0])
    token = path.split("token=", 1)[1]
    if tamper == "garbage":
        path = "/api/auth/verify-email?token=nonsense"
    elif tamper == "flip":
        path = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    elif tamper == "other-address":
        User.objects.filter(email="grace@example.org").update(email="grace2@example.org")
    else:
        settings.EMAIL_VERIFICATION_MAX_AGE_HOURS = 1
        later = signing.time.time() + 2 * 3600  # type: ignore[attr-defined]
        monkeypatch.setattr(signing.time, "time", lambda: later)  # type: ignore[attr-defined]
    assert token

    response = Client().get(path)

    assert response.status_code == 302 and response["Location"] == "/login?verified=0"
    assert not User.objects.filter(email_verified_at__isnull=False).exists()


def test_accounts_made_by_staff_or_commands_are_verified(make_user: Callable[..., User]) -> None:
    assert make_user(email="ops@example.org").email_verified_at is not None


@pytest.mark.parametrize(
    ("value", "backend"),
    [
        ("", "django.core.mail.backends.console.EmailBackend"),
        ("smtp", "django.core.mail.backends.smtp.EmailBackend"),
    ],
)
def test_email_goes_to_the_console_locally_and_to_smtp_when_configured(
    value: str, backend: str
) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "EMAIL_BACKEND": value}
    script = "import django; django.setup(); from django.conf import settings; "
    result = subprocess.run(
        [sys.executable, "-c", script + "print(settings.EMAIL_BACKEND)"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.stdout.strip() == backend, result.stderr
