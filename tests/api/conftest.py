"""Fixtures of the API app's tests: the consumer tests' real Redis (own prefixes), recorded
Celery hand-offs, the registry's default model, and users with keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import User
from api.models import ApiKey
from api.services import api_key_create
from tests.chat.consumer_support import (  # noqa: F401 (fixtures)
    chat_env,
    default_model,
    dispatched,
    isolated_redis,
    make_user,
    moderation_warm,
)


@pytest.fixture
def make_key(make_user: Callable[..., User]) -> Callable[..., tuple[str, ApiKey]]:  # noqa: F811
    def make(user: User | None = None, **fields: Any) -> tuple[str, ApiKey]:
        fields.setdefault("name", "test")
        return api_key_create(user=user or make_user(), **fields)

    return make
