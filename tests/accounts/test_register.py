"""POST /api/auth/register and the `user_register` service."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from pytest_django import Settings

from accounts.models import User
from accounts.services import user_register
from config.errors import ApiError
from tests.accounts.conftest import PASSWORD

pytestmark = pytest.mark.django_db
URL = "/api/auth/register"


def post_json(client: Client, body: Any, **extra: Any) -> Any:
    return client.post(URL, json.dumps(body), content_type="application/json", **extra)


def test_register_creates_an_account_with_a_normalised_email() -> None:
    response = post_json(Client(), {"email": "  Grace.Hopper@Example.ORG ", "password": PASSWORD})

    assert response.status_code == 201
    created = User.objects.get()
    assert response.json() == {
        "email": "grace.hopper@example.org",
        "email_verification_required": False,  # off in the test settings (DEBUG)
    }
    assert created.email == "grace.hopper@example.org"
    assert created.check_password(PASSWORD)
    assert created.is_active and not created.is_staff


def test_register_reports_every_password_validator_failure_per_field() -> None:
    response = post_json(Client(), {"email": "grace@example.org", "password": "1234"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    messages = " ".join(error["fields"]["password"])
    assert "too short" in messages
    assert "too common" in messages
    assert "entirely numeric" in messages
    assert "email" not in error["fields"]
    assert not User.objects.exists()


def test_register_refuses_a_password_too_similar_to_the_email() -> None:
    response = post_json(Client(), {"email": "grace.hopper@example.org", "password": "gracehopper"})

    assert response.status_code == 400
    assert "similar" in " ".join(response.json()["error"]["fields"]["password"])


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"password": PASSWORD}, {"email"}),
        ({"email": "not-an-email", "password": PASSWORD}, {"email"}),
        ({"email": ["a@example.org"], "password": PASSWORD}, {"email"}),
        ({"email": "a" * 250 + "@example.org", "password": PASSWORD}, {"email"}),
        ({"email": "grace@example.org"}, {"password"}),
        ({"email": "grace@example.org", "password": 12345678}, {"password"}),
        ({}, {"email", "password"}),
    ],
    ids=[
        "no-email",
        "bad-email",
        "email-not-string",
        "email-too-long",
        "no-password",
        "password-not-string",
        "empty",
    ],
)
def test_register_names_each_invalid_field(body: dict[str, Any], fields: set[str]) -> None:
    response = post_json(Client(), body)

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == fields
    assert not User.objects.exists()


def test_register_with_a_taken_email_in_any_case_creates_nothing(user: User) -> None:
    # Answered exactly like a new address: tests/accounts/test_security_registration.py.
    response = post_json(Client(), {"email": user.email.upper(), "password": PASSWORD})

    assert response.status_code == 201
    assert User.objects.count() == 1


def test_register_with_malformed_json_is_a_bad_request() -> None:
    response = Client().post(URL, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert not User.objects.exists()


def test_register_with_a_json_array_is_a_bad_request() -> None:
    response = post_json(Client(), ["grace@example.org", PASSWORD])
    assert response.status_code == 400


def test_register_with_an_oversized_body_is_413(settings: Settings) -> None:
    body = {"email": "grace@example.org", "password": PASSWORD, "pad": "x" * 2048}
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = post_json(Client(), body)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert not User.objects.exists()


def test_register_only_accepts_post() -> None:
    response = Client().get(URL)
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_user_register_service_rejects_overlong_passwords_without_hashing_them() -> None:
    with pytest.raises(ApiError) as raised:
        user_register(email="grace@example.org", password="x" * 5000, link=str)
    assert raised.value.fields is not None and "password" in raised.value.fields
