"""POST/DELETE /api/auth/token, and bearer authentication of HTTP requests (the middleware)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken, User
from accounts.services import token_issue
from tests.accounts.conftest import PASSWORD
from tests.accounts.helpers import csrf_token, post_json

pytestmark = pytest.mark.django_db


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def issue(client: Client, user: User, **body: Any) -> Any:
    return post_json(client, "/api/auth/token", {"email": user.email, "password": PASSWORD, **body})


def test_token_is_issued_without_cookies_or_csrf(csrf_client: Client, user: User) -> None:
    response = issue(csrf_client, user, name="pixel")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    record = ApiToken.objects.get()
    assert record.user == user and record.name == "pixel"
    assert datetime.fromisoformat(body["expires_at"]) == record.expires_at
    assert response["Cache-Control"] == "no-store"
    assert not response.cookies


def test_token_request_with_wrong_password_is_401_and_issues_nothing(user: User) -> None:
    response = post_json(Client(), "/api/auth/token", {"email": user.email, "password": "no"})

    assert response.status_code == 401
    assert not ApiToken.objects.exists()


def test_token_name_must_be_a_string(user: User) -> None:
    response = issue(Client(), user, name=["x"])
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_bearer_token_authenticates_api_requests(user: User) -> None:
    raw = issue(Client(), user).json()["token"]

    response = Client().get("/api/auth/me", headers=bearer(raw))

    assert response.status_code == 200
    assert response.json()["email"] == user.email


@pytest.mark.parametrize("state", ["unknown", "expired", "revoked"])
def test_unusable_bearer_token_is_401_on_api_paths(user: User, state: str) -> None:
    raw, record = token_issue(user=user)
    if state == "unknown":
        raw = raw[:-2] + "zz"
    elif state == "expired":
        record.expires_at = timezone.now() - timedelta(minutes=1)
        record.save()
    else:
        record.revoked_at = timezone.now()
        record.save()

    response = Client().get("/api/test/whoami", headers=bearer(raw))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_invalid_bearer_token_never_falls_back_to_the_session(
    csrf_client: Client, user: User
) -> None:
    csrf_client.force_login(user)

    api = csrf_client.get("/api/test/whoami", headers=bearer("chat_forged"))
    plain = csrf_client.get("/plain/whoami", headers=bearer("chat_forged"))

    assert api.status_code == 401
    # Outside /api/ and /v1/ the header is not read at all: the session alone decides.
    assert plain.status_code == 200 and plain.json() == {"email": user.email}


def test_bearer_token_wins_over_a_session_cookie(
    csrf_client: Client, user: User, make_user: Any
) -> None:
    other = make_user(email="grace@example.org")
    csrf_client.force_login(other)
    raw, _ = token_issue(user=user)

    response = csrf_client.get("/api/test/whoami", headers=bearer(raw))

    assert response.json() == {"email": user.email}


def test_bearer_requests_are_exempt_from_csrf(csrf_client: Client, user: User) -> None:
    raw, _ = token_issue(user=user)
    csrf_client.force_login(user)  # even with a session cookie present

    response = csrf_client.post("/api/test/whoami", headers=bearer(raw))

    assert response.status_code == 200


def test_other_authorization_schemes_are_left_alone(csrf_client: Client, user: User) -> None:
    csrf_client.force_login(user)

    response = csrf_client.get("/api/test/whoami", HTTP_AUTHORIZATION="Basic YTpi")

    assert response.json() == {"email": user.email}


def test_delete_token_revokes_the_bearer_token_of_the_request(user: User) -> None:
    raw = issue(Client(), user).json()["token"]
    kept, _ = token_issue(user=user)

    response = Client().delete("/api/auth/token", headers=bearer(raw))

    assert response.status_code == 204
    assert Client().get("/api/auth/me", headers=bearer(raw)).status_code == 401
    assert Client().get("/api/auth/me", headers=bearer(kept)).status_code == 200


def test_delete_token_without_a_bearer_token_is_401(csrf_client: Client, user: User) -> None:
    csrf_client.force_login(user)  # a session is not a token to revoke
    token_issue(user=user)

    response = csrf_client.delete("/api/auth/token")

    assert response.status_code == 401
    assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 1


def test_bearer_authenticated_logout_needs_no_csrf_token(user: User) -> None:
    raw, _ = token_issue(user=user)
    client = Client(enforce_csrf_checks=True)
    csrf_token(client)

    response = client.post("/api/auth/logout", headers=bearer(raw))

    assert response.status_code == 204
