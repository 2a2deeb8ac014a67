"""Who may use /api/admin/: staff only. Anonymous 401, a user who is not staff 403, a staff
session (with its CSRF token for writes, and its second factor when the admin would ask for
one) or a staff bearer token; every endpoint alike."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from pytest_django import Settings

from accounts.models import User
from tests.staff.conftest import bearer, csrf_header, patch_json, session_client

pytestmark = pytest.mark.django_db(transaction=True)

READS = [
    "/api/admin/generations",
    "/api/admin/users",
    "/api/admin/plans",
    "/api/admin/usage?group_by=model",
]


@pytest.mark.parametrize("url", READS)
def test_anonymous_requests_get_401(url: str) -> None:
    response = Client().get(url)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("url", READS)
def test_users_who_are_not_staff_get_403_by_session_and_by_token(
    url: str, make_user: Callable[..., User]
) -> None:
    user = make_user()

    by_session = session_client(user).get(url)
    by_token = Client().get(url, **bearer(user))

    assert by_session.status_code == by_token.status_code == 403
    assert by_token.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("url", READS)
def test_staff_read_every_endpoint_by_session_and_by_token(url: str, superuser: User) -> None:
    assert session_client(superuser).get(url).status_code == 200
    assert Client().get(url, **bearer(superuser)).status_code == 200


def test_a_suspended_staff_members_token_is_refused(superuser: User) -> None:
    headers = bearer(superuser)
    User.objects.filter(pk=superuser.pk).update(is_active=False)

    assert Client().get("/api/admin/users", **headers).status_code == 401


def test_a_session_write_needs_the_csrf_token(
    superuser: User, make_user: Callable[..., User]
) -> None:
    target = make_user()
    client = session_client(superuser)
    url = f"/api/admin/users/{target.pk}"

    refused = patch_json(client, url, {"is_active": False})
    accepted = patch_json(client, url, {"is_active": False}, **csrf_header(client))

    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
    assert accepted.status_code == 200
    target.refresh_from_db()
    assert target.is_active is False


def test_a_token_write_needs_no_csrf_token(superuser: User, make_user: Callable[..., User]) -> None:
    target = make_user()

    response = patch_json(
        Client(enforce_csrf_checks=True),
        f"/api/admin/users/{target.pk}",
        {"is_active": False},
        **bearer(superuser),
    )

    assert response.status_code == 200


def test_a_session_without_the_second_factor_the_admin_requires_is_refused(
    superuser: User, settings: Settings
) -> None:
    settings.ADMIN_REQUIRE_2FA = True
    TOTPDevice.objects.create(user=superuser, name="phone", confirmed=True)

    by_session = session_client(superuser).get("/api/admin/users")
    by_token = Client().get("/api/admin/users", **bearer(superuser))

    assert by_session.status_code == 403
    assert "second factor" in by_session.json()["error"]["message"]
    assert by_token.status_code == 200


def test_the_methods_each_endpoint_allows(superuser: User) -> None:
    headers = bearer(superuser)

    assert Client().post("/api/admin/users", **headers).status_code == 405
    assert Client().get("/api/admin/generations/abc/stop", **headers).status_code == 405
    assert Client().delete("/api/admin/plans", **headers).status_code == 405
