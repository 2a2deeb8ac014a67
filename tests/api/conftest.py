"""Fixtures of the API app's tests: the consumer tests' real Redis (own prefixes), recorded
Celery hand-offs, the registry's default model, users with keys, and a key whose generations a
stand-in worker holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from api.models import ApiKey
from api.services import api_key_create
from tests.api.v1_support import HeldCompletion, holding_worker
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


@pytest.fixture
async def held_completion(
    chat_env: Any,  # noqa: F811
    make_key: Callable[..., tuple[str, ApiKey]],
    monkeypatch: pytest.MonkeyPatch,
) -> HeldCompletion:
    worker = holding_worker(chat_env=chat_env, monkeypatch=monkeypatch)
    raw, _ = await sync_to_async(make_key)()
    return HeldCompletion(raw_key=raw, worker=worker)
