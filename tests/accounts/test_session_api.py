"""Browser sessions: csrf, login, logout, me, and CSRF on every session-authenticated write."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from tests.accounts.conftest import PASSWORD
from tests.accounts.helpers import csrf_token, post_json

pytestmark = pytest.mark.django_db


def login(client: Client, email: str, password: str = PASSWORD) -> Any:
    token = csrf_token(client)
    return post_json(
        client, "/api/auth/login", {"email": email, "password": password}, HTTP_X_CSRFTOKEN=token
    )


def test_csrf_endpoint_returns_the_token_and_sets_the_cookie(csrf_client: Client) -> None:
    response = csrf_client.get("/api/auth/csrf")

    assert response.status_code == 200
    assert response.json()["csrf_token"]
    assert settings.CSRF_COOKIE_NAME in response.cookies
    assert response["Cache-Control"] == "no-store"


def test_me_is_401_json_when_anonymous() -> None:
    response = Client().get("/api/auth/me")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_login_with_the_csrf_token_starts_a_session(csrf_client: Client, user: User) -> None:
    response = login(csrf_client, "ADA@example.org")

    assert response.status_code == 200
    assert response.json()["email"] == user.email
    assert settings.SESSION_COOKIE_NAME in csrf_client.cookies
    me = csrf_client.get("/api/auth/me")
    assert me.status_code == 200
    body = me.json()
    assert {"id": user.pk, "email": user.email, "display_name": ""}.items() <= body.items()
    assert body["plan"]["name"] == "free"  # added by plans: additive, nothing removed


def test_login_without_the_csrf_token_is_refused_with_json_403(
    csrf_client: Client, user: User
) -> None:
    csrf_token(csrf_client)  # the cookie alone is not enough

    response = post_json(
        csrf_client, "/api/auth/login", {"email": user.email, "password": PASSWORD}
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert "X-CSRFToken" in response.json()["error"]["message"]
    assert csrf_client.get("/api/auth/me").status_code == 401


@pytest.mark.parametrize(
    ("email", "password"),
    [("ada@example.org", "wrong password"), ("nobody@example.org", PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
def test_login_with_bad_credentials_is_401_with_one_message(
    csrf_client: Client, user: User, email: str, password: str
) -> None:
    response = login(csrf_client, email, password)

    assert response.status_code == 401
    error = response.json()["error"]
    assert error == {
        "code": "unauthorized",
        "message": "The email address or password is incorrect.",
    }
    assert settings.SESSION_COOKIE_NAME not in csrf_client.cookies


def test_login_of_a_deactivated_account_is_refused(
    csrf_client: Client, make_user: Callable[..., User]
) -> None:
    make_user(email="gone@example.org", is_active=False)
    response = login(csrf_client, "gone@example.org")
    assert response.status_code == 401


def test_login_without_fields_is_400_per_field(csrf_client: Client) -> None:
    token = csrf_token(csrf_client)
    response = post_json(csrf_client, "/api/auth/login", {}, HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"email", "password"}


def test_logout_needs_the_csrf_token_then_ends_the_session(csrf_client: Client, user: User) -> None:
    login(csrf_client, user.email)

    refused = csrf_client.post("/api/auth/logout")
    assert refused.status_code == 403
    assert csrf_client.get("/api/auth/me").status_code == 200

    token = csrf_client.cookies[settings.CSRF_COOKIE_NAME].value
    response = csrf_client.post("/api/auth/logout", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 204
    assert csrf_client.get("/api/auth/me").status_code == 401


def test_session_authenticated_api_write_needs_the_csrf_token(
    csrf_client: Client, user: User
) -> None:
    login(csrf_client, user.email)

    refused = csrf_client.post("/api/test/whoami")
    token = csrf_client.cookies[settings.CSRF_COOKIE_NAME].value
    allowed = csrf_client.post("/api/test/whoami", HTTP_X_CSRFTOKEN=token)

    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert allowed.json() == {"email": user.email}


def test_csrf_failure_outside_the_api_keeps_djangos_html_page(csrf_client: Client) -> None:
    response = csrf_client.post("/plain/whoami")

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")


def test_browser_registration_starts_no_session_and_the_app_logs_in_next(
    csrf_client: Client,
) -> None:
    # Registration answers alike for new and taken addresses, so it never signs anyone in
    # (issue 15, finding 9); the browser app logs in with the same credentials afterwards.
    token = csrf_token(csrf_client)
    body = {"email": "grace@example.org", "password": PASSWORD}

    response = post_json(csrf_client, "/api/auth/register", body, HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 201
    assert csrf_client.get("/api/auth/me").status_code == 401
    login = post_json(csrf_client, "/api/auth/login", body, HTTP_X_CSRFTOKEN=token)
    assert login.status_code == 200
    assert csrf_client.get("/api/auth/me").json()["email"] == "grace@example.org"


def test_registration_without_cookies_creates_the_account_but_no_session(
    csrf_client: Client,
) -> None:
    # A mobile app (or a cross-site form: our cookies are SameSite=Lax) sends no cookies.
    response = post_json(
        csrf_client, "/api/auth/register", {"email": "grace@example.org", "password": PASSWORD}
    )

    assert response.status_code == 201
    assert User.objects.filter(email="grace@example.org").exists()
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert csrf_client.get("/api/auth/me").status_code == 401
