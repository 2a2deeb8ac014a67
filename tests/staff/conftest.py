"""Fixtures of the staff console tests: real PostgreSQL, real Redis (under a key prefix of
the test's own), the conversation store on mongomock, and clients for each kind of caller."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from accounts.services import token_issue
from chat.store import reset_store_for_tests
from tests.chat.consumer_support import isolated_redis, make_user

__all__ = ["isolated_redis", "make_user"]  # fixtures of the chat tests, used here too


@pytest.fixture(autouse=True)
def staff_redis(isolated_redis: str) -> str:
    """Limits and the channel layer under this test's own prefix (its keys go afterwards)."""
    return isolated_redis


@pytest.fixture(autouse=True)
def empty_store() -> Iterator[None]:
    reset_store_for_tests()
    yield
    reset_store_for_tests()


@pytest.fixture
def superuser(make_user: Callable[..., User]) -> User:
    return make_user(is_staff=True, is_superuser=True)


def session_client(user: User) -> Client:
    """A browser with the user's session; it enforces CSRF like a real one."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_header(client: Client) -> dict[str, str]:
    token = client.get("/api/auth/csrf").json()["csrf_token"]
    return {"HTTP_X_CSRFTOKEN": token}


def bearer(user: User) -> dict[str, str]:
    raw, _ = token_issue(user=user)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def patch_json(client: Client, url: str, body: Any, **extra: Any) -> Any:
    return client.patch(url, json.dumps(body), content_type="application/json", **extra)
