from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client
from pytest_django import Settings

from accounts.models import User

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(autouse=True)
def accounts_urls(settings: Settings) -> None:
    # The accounts API plus two probe views, independent of other apps' URLs.
    settings.ROOT_URLCONF = "tests.accounts.urls"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Settings) -> None:
    # The production hasher (1M PBKDF2 rounds) costs ~1 s per check on a busy 2-core machine;
    # the behaviour under test does not depend on which hasher runs.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def isolated_cache(settings: Settings) -> Iterator[str]:
    """Real Redis, with a key prefix of this test's own; its keys are deleted afterwards.

    (`cache.clear()` would FLUSHDB the Redis that other suites and processes share.)
    """
    prefix = f"chat-test-accounts-{uuid.uuid4().hex}"
    caches = {name: dict(config) for name, config in django_settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = prefix
    settings.CACHES = caches
    yield prefix
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def make_user(django_user_model: type[User]) -> Callable[..., User]:
    counter = iter(range(1_000_000))

    def make(email: str | None = None, password: str = PASSWORD, **extra: object) -> User:
        return django_user_model.objects.create_user(
            email=email or f"user{next(counter)}@example.org", password=password, **extra
        )

    return make


@pytest.fixture
def user(make_user: Callable[..., User]) -> User:
    return make_user(email="ada@example.org")


@pytest.fixture
def csrf_client() -> Client:
    """A browser-like client: Django's test client skips CSRF checks unless told not to."""
    return Client(enforce_csrf_checks=True)
