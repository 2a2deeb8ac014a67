from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.test import Client

from moderation import registry, state


@pytest.fixture(autouse=True)
def fresh_moderation_state() -> Iterator[None]:
    """Each test starts with no loaded rules and no loaded checks, so settings overrides and
    database rows of one test never leak into the next."""
    state.reset_local()
    registry.clear_instances()
    yield
    state.reset_local()
    registry.clear_instances()


@pytest.fixture
def rules_db(transactional_db: None) -> None:
    """Real commits, so rule edits publish a new version (on commit) as in production."""
    cache.delete(state.VERSION_KEY)


@pytest.fixture
def staff_client(django_user_model: type) -> Client:
    """A logged-in superuser for the admin screens."""
    user = django_user_model.objects.create_superuser(email="root@example.org", password="x")
    client = Client()
    client.force_login(user)
    return client
