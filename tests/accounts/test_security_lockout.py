"""Issue 15, finding 7: failed logins from one address cannot lock the account's owner out
elsewhere. Counted in real Redis: per email and address, per email (a higher ceiling), per
address."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from pytest_django import Settings

from accounts.models import User
from tests.accounts.conftest import PASSWORD
from tests.accounts.helpers import post_json

pytestmark = pytest.mark.django_db

ATTACKER = "198.51.100.66"
OWNER = "203.0.113.10"


@pytest.fixture(autouse=True)
def limits(settings: Settings) -> None:
    settings.LOGIN_FAILURE_LIMIT = 5
    settings.LOGIN_FAILURE_EMAIL_LIMIT = 12
    settings.LOGIN_FAILURE_IP_LIMIT = 50
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 60


def token_login(email: str, password: str, ip: str) -> Any:
    body = {"email": email, "password": password}
    return post_json(Client(), "/api/auth/token", body, REMOTE_ADDR=ip)


def test_failures_from_another_address_do_not_lock_out_the_owner(user: User) -> None:
    for _ in range(5):
        assert token_login(user.email, "guess", ATTACKER).status_code == 401

    attacker = token_login(user.email, "guess", ATTACKER)
    owner = token_login(user.email, PASSWORD, OWNER)

    assert attacker.status_code == 429
    assert owner.status_code == 201


def test_the_guesser_stays_blocked_even_with_the_right_password(user: User) -> None:
    for _ in range(5):
        token_login(user.email, "guess", ATTACKER)

    assert token_login(user.email, PASSWORD, ATTACKER).status_code == 429


def test_guesses_spread_over_many_addresses_meet_the_per_email_ceiling(user: User) -> None:
    for n in range(12):
        assert token_login(user.email, "guess", f"192.0.2.{n}").status_code == 401

    assert token_login(user.email, PASSWORD, OWNER).status_code == 429


def test_the_owners_own_mistakes_block_only_the_owners_address(user: User) -> None:
    for _ in range(5):
        token_login(user.email, "typo", OWNER)

    assert token_login(user.email, PASSWORD, OWNER).status_code == 429
    assert token_login(user.email, PASSWORD, "203.0.113.11").status_code == 201
