"""The admin: users by email, tokens inspectable and revocable but never created there."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from accounts.models import ApiToken, User
from accounts.services import token_issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(make_user: Callable[..., User]) -> Client:
    client = Client()
    client.force_login(make_user(email="root@example.org", is_staff=True, is_superuser=True))
    return client


def test_admin_adds_a_user_by_email_normalised(admin_client: Client) -> None:
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "New.Person@Example.org",
            "usable_password": "true",
            "password1": "a sturdy passphrase 77",
            "password2": "a sturdy passphrase 77",
        },
    )

    assert response.status_code == 302, response.content[:2000]
    created = User.objects.get(email="new.person@example.org")
    assert created.check_password("a sturdy passphrase 77")


def test_admin_refuses_an_email_differing_only_in_case(admin_client: Client, user: User) -> None:
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {"email": user.email.upper(), "usable_password": "false"},
    )

    assert response.status_code == 200  # the form again, with an error
    assert User.objects.filter(email__iexact=user.email).count() == 1


def test_admin_user_pages_render(admin_client: Client, user: User) -> None:
    assert admin_client.get("/admin/accounts/user/").status_code == 200
    assert admin_client.get(f"/admin/accounts/user/{user.pk}/change/").status_code == 200


def test_admin_shows_the_token_hash_read_only_and_cannot_add_tokens(
    admin_client: Client, user: User
) -> None:
    raw, token = token_issue(user=user)

    page = admin_client.get(f"/admin/accounts/apitoken/{token.pk}/change/")

    assert page.status_code == 200
    assert token.key_hash in page.content.decode()
    assert raw not in page.content.decode()
    assert admin_client.get("/admin/accounts/apitoken/add/").status_code == 403


def test_admin_action_revokes_selected_tokens(admin_client: Client, user: User) -> None:
    _, token = token_issue(user=user)

    response = admin_client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke_tokens", "_selected_action": [str(token.pk)]},
    )

    assert response.status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
