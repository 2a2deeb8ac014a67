from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache

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
