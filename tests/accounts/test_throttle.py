"""Throttling of failed logins (POST login and POST token), counted in real Redis."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client
from pytest_django import Settings

from accounts import services
from accounts.models import ApiToken, User
from tests.accounts.conftest import PASSWORD
from tests.accounts.helpers import csrf_token, post_json

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_limits(settings: Settings) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_IP_LIMIT = 5
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 60


def session_login(client: Client, email: str, password: str, ip: str = "203.0.113.1") -> Any:
    token = csrf_token(client)
    body = {"email": email, "password": password}
    return post_json(client, "/api/auth/login", body, HTTP_X_CSRFTOKEN=token, REMOTE_ADDR=ip)


def token_login(client: Client, email: str, password: str, ip: str = "203.0.113.1") -> Any:
    body = {"email": email, "password": password}
    return post_json(client, "/api/auth/token", body, REMOTE_ADDR=ip)


def assert_rate_limited(response: Any, window: int = 60) -> None:
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= window


def test_correct_password_is_refused_after_too_many_failed_logins(
    csrf_client: Client, user: User
) -> None:
    for _ in range(3):
        assert session_login(csrf_client, user.email, "wrong").status_code == 401

    response = session_login(csrf_client, user.email, PASSWORD)

    assert_rate_limited(response)
    assert csrf_client.get("/api/auth/me").status_code == 401
    user.refresh_from_db()
    assert user.last_login is None


def test_token_endpoint_is_throttled_by_the_same_failures(csrf_client: Client, user: User) -> None:
    for _ in range(2):
        session_login(csrf_client, user.email, "wrong")
    token_login(Client(), user.email.upper(), "wrong")  # same address, other spelling

    response = token_login(Client(), user.email, PASSWORD)

    assert_rate_limited(response)
    assert not ApiToken.objects.exists()


def test_while_throttled_the_password_is_not_checked(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        token_login(Client(), user.email, "wrong")
    checked: list[str] = []
    monkeypatch.setattr(services, "authenticate", lambda *a, **kw: checked.append("called"))

    response = token_login(Client(), user.email, PASSWORD)

    assert_rate_limited(response)
    assert checked == []


def test_unknown_emails_are_throttled_like_known_ones(db: None) -> None:
    for _ in range(3):
        assert token_login(Client(), "nobody@example.org", "guess").status_code == 401
    assert_rate_limited(token_login(Client(), "nobody@example.org", "guess"))


def test_one_email_blocked_leaves_other_accounts_usable(make_user: Any, user: User) -> None:
    other = make_user(email="grace@example.org")
    for _ in range(3):
        token_login(Client(), user.email, "wrong")

    assert token_login(Client(), other.email, PASSWORD).status_code == 201


def test_one_client_address_is_blocked_after_the_higher_per_ip_limit(
    make_user: Any, user: User
) -> None:
    for n in range(5):
        token_login(Client(), f"guess{n}@example.org", "wrong", ip="198.51.100.7")

    blocked = token_login(Client(), user.email, PASSWORD, ip="198.51.100.7")
    elsewhere = token_login(Client(), user.email, PASSWORD, ip="198.51.100.8")

    assert_rate_limited(blocked)
    assert elsewhere.status_code == 201


def test_a_successful_login_resets_the_email_counter(user: User) -> None:
    for _ in range(2):
        token_login(Client(), user.email, "wrong")
    assert token_login(Client(), user.email, PASSWORD).status_code == 201
    for _ in range(2):
        token_login(Client(), user.email, "wrong")

    assert token_login(Client(), user.email, PASSWORD).status_code == 201


def test_the_block_ends_when_the_window_ends(user: User, settings: Settings) -> None:
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 1
    for _ in range(3):
        token_login(Client(), user.email, "wrong")
    assert_rate_limited(token_login(Client(), user.email, PASSWORD), window=1)

    time.sleep(1.2)

    assert token_login(Client(), user.email, PASSWORD).status_code == 201


def register(client: Client, email: str, ip: str) -> Any:
    body = {"email": email, "password": "a long enough passphrase 7"}
    return post_json(client, "/api/auth/register", body, REMOTE_ADDR=ip)


def test_registrations_from_one_address_are_limited_and_others_are_not(
    settings: Settings,
) -> None:
    settings.REGISTRATION_IP_LIMIT = 3
    settings.REGISTRATION_WINDOW_SECONDS = 600
    client = Client()
    busy, other = "198.51.100.7", "2001:db8::7"

    assert register(client, "a@example.org", busy).status_code == 201
    assert register(client, "a@example.org", busy).status_code == 201  # a probe counts too
    assert register(client, "b@example.org", busy).status_code == 201
    refused = register(client, "c@example.org", busy)

    assert_rate_limited(refused, window=600)
    assert "Too many new accounts" in refused.json()["error"]["message"]
    assert not User.objects.filter(email="c@example.org").exists()  # nothing stored
    assert register(client, "c@example.org", other).status_code == 201
