"""The OpenAI-compatible API enforces the user's plan through the same admission as the
websocket: a model outside the plan is 403 `model_not_allowed`, a tighter plan's rate is 429
where `pro` goes on, and a plan change applies to the next request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from accounts.models import Plan, User
from api.models import ApiKey
from api.v1 import workers
from chat.generation import admission
from tests.api.v1_support import FakeWorker

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "smollm2-135m"
HELLO = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}]}


@pytest.fixture
async def worker(chat_env: Any, monkeypatch: pytest.MonkeyPatch) -> FakeWorker:
    monkeypatch.setattr(workers, "queue_served", lambda queue: True)
    fake = FakeWorker(loop=asyncio.get_running_loop())
    monkeypatch.setattr(admission.celery_app, "send_task", fake.send_task)
    return fake


def on_plan(make_key: Callable[..., tuple[str, ApiKey]], make_user: Any, name: str, **limits: Any):
    plan, _ = Plan.objects.update_or_create(name=name, defaults=limits)
    user = make_user(plan=plan)
    return make_key(user=user)[0], user


async def post(raw: str, body: Any) -> Any:
    return await AsyncClient().post(
        "/v1/chat/completions",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )


async def test_a_model_outside_the_plan_is_403_model_not_allowed(
    worker: FakeWorker, make_key: Any, make_user: Any
) -> None:
    raw, _ = await sync_to_async(on_plan)(make_key, make_user, "narrow", allowed_models=["other"])

    response = await post(raw, HELLO)

    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (
        "model_not_allowed",
        "model",
        "permission_error",
    )
    assert (
        error["message"]
        == f"The narrow plan does not include the model {MODEL}; it includes other."
    )
    assert worker.tasks == []


async def test_a_model_outside_the_plan_is_403_even_when_no_worker_serves_it(
    chat_env: Any, make_key: Any, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "queue_served", lambda queue: False)
    raw, _ = await sync_to_async(on_plan)(make_key, make_user, "narrow", allowed_models=["other"])
    allowed, _ = await sync_to_async(on_plan)(make_key, make_user, "wide", allowed_models=[MODEL])

    refused = await post(raw, HELLO)
    unserved = await post(allowed, HELLO)

    # The plan answers first: a model the user may not use says nothing about its workers.
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "model_not_allowed")
    assert (unserved.status_code, unserved.json()["error"]["code"]) == (503, "model_unavailable")


async def test_a_tighter_plan_is_429_where_pro_is_not_and_a_plan_change_applies_at_once(
    worker: FakeWorker, make_key: Any, make_user: Any
) -> None:
    tight_key, tight_user = await sync_to_async(on_plan)(
        make_key, make_user, "tight", messages_per_minute=1
    )
    pro_key, _ = await sync_to_async(on_plan)(make_key, make_user, "pro", messages_per_minute=60)
    for raw in (tight_key, pro_key):
        assert (await post(raw, HELLO)).status_code == 200

    assert (await post(tight_key, HELLO)).status_code == 429
    assert (await post(pro_key, HELLO)).status_code == 200

    pro = await sync_to_async(Plan.objects.get)(name="pro")
    await sync_to_async(User.objects.filter(pk=tight_user.pk).update)(plan=pro)
    assert (await post(tight_key, HELLO)).status_code == 200
