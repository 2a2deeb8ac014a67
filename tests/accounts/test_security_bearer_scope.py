"""Issue 15, finding 8: a bearer token is a credential under /api/ and /v1/ only (and on the
websocket, tested in test_ws_auth). On the admin it authenticates nobody and exempts nothing
from CSRF."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from accounts.models import User
from accounts.services import token_issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(make_user: Callable[..., User]) -> User:
    return make_user(email="root@example.org", is_staff=True, is_superuser=True)


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def test_a_staff_bearer_token_does_not_open_the_admin(staff: User) -> None:
    raw, _ = token_issue(user=staff)

    response = Client().get("/admin/accounts/user/", headers=bearer(raw))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_a_bearer_token_does_not_exempt_an_admin_post_from_csrf(
    csrf_client: Client, staff: User
) -> None:
    raw, _ = token_issue(user=staff)
    csrf_client.force_login(staff)

    response = csrf_client.post(
        "/admin/accounts/apitoken/", {"action": "revoke_tokens"}, headers=bearer(raw)
    )

    assert response.status_code == 403  # Django's CSRF refusal, as without the header


def test_a_bearer_token_authenticates_the_openai_compatible_api(user: User) -> None:
    raw, _ = token_issue(user=user)

    response = Client().post("/v1/test/whoami", headers=bearer(raw))

    assert response.status_code == 200
    assert response.json() == {"email": user.email}


def test_an_invalid_bearer_token_on_the_openai_compatible_api_is_401(user: User) -> None:
    response = Client().get("/v1/test/whoami", headers=bearer("chat_forged"))

    assert response.status_code == 401


def test_a_bearer_token_means_nothing_outside_the_apis(user: User) -> None:
    raw, _ = token_issue(user=user)

    response = Client().get("/plain/whoami", headers=bearer(raw))

    assert response.json() == {"email": None}
