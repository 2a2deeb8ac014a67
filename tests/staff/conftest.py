"""Fixtures of the staff console tests: real PostgreSQL, real Redis (under a key prefix of
the test's own), the conversation store on mongomock, and clients for each kind of caller."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client
from pytest_django import Settings

from accounts.models import User
from accounts.services import token_issue
from chat.store import reset_store_for_tests

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(autouse=True)
def isolated_redis(settings: Settings) -> Iterator[str]:
    """Limits and the channel layer under this test's own prefix; its keys go afterwards."""
    prefix = f"chat-test-staff-{uuid.uuid4().hex[:12]}"
    caches = {name: dict(config) for name, config in django_settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = prefix
    settings.CACHES = caches
    layers = json.loads(json.dumps(django_settings.CHANNEL_LAYERS))
    layers["default"]["CONFIG"]["prefix"] = prefix
    settings.CHANNEL_LAYERS = layers
    yield prefix
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"*{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(autouse=True)
def empty_store() -> Iterator[None]:
    reset_store_for_tests()
    yield
    reset_store_for_tests()


@pytest.fixture
def make_user(transactional_db: None) -> Callable[..., User]:
    def make(**extra: Any) -> User:
        return User.objects.create_user(
            email=f"user-{uuid.uuid4().hex[:10]}@example.org", password=PASSWORD, **extra
        )

    return make


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
