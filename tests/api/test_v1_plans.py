"""The OpenAI-compatible API enforces the user's plan through the same admission as the
websocket: `/v1/models` lists only the models the plan allows, a model outside it is 404
`model_not_found` (as OpenAI answers for a model one has no access to), a tighter plan's rate
is 429 where `pro` goes on, and a plan change applies to the next request."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from accounts import plans
from accounts.models import Plan, User
from api.models import ApiKey
from api.v1 import workers
from api.v1.errors import from_api_error
from chat.errors import ChatError
from chat.generation import admission
from inference.models import LanguageModel
from tests.api.v1_support import FakeWorker, post

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


async def get(raw: str, path: str) -> Any:
    return await AsyncClient().get(path, headers={"Authorization": f"Bearer {raw}"})


def a_second_model() -> None:
    LanguageModel.objects.create(name="other", display_name="Other", weights="other")


async def test_v1_models_lists_only_the_models_the_plan_allows(
    worker: FakeWorker, make_key: Any, make_user: Any
) -> None:
    await sync_to_async(a_second_model)()
    narrow, _ = await sync_to_async(on_plan)(
        make_key, make_user, "narrow", allowed_models=["other"]
    )
    every, _ = await sync_to_async(on_plan)(make_key, make_user, "every", allowed_models=[])

    listed = await get(narrow, "/v1/models")
    listed_all = await get(every, "/v1/models")
    outside = await get(narrow, f"/v1/models/{MODEL}")
    inside = await get(narrow, "/v1/models/other")

    assert [model["id"] for model in listed.json()["data"]] == ["other"]
    assert [model["id"] for model in listed_all.json()["data"]] == [MODEL, "other", "auto"]
    assert outside.status_code == 404
    assert outside.json()["error"] == {
        "message": f"The model '{MODEL}' does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    assert inside.status_code == 200 and inside.json()["id"] == "other"


async def test_a_completion_with_a_model_outside_the_plan_is_404_model_not_found(
    worker: FakeWorker, make_key: Any, make_user: Any
) -> None:
    raw, _ = await sync_to_async(on_plan)(make_key, make_user, "narrow", allowed_models=["other"])

    response = await post(raw, HELLO)

    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": f"The model '{MODEL}' does not exist or you do not have access to it. "
        "The narrow plan does not include it.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    assert worker.tasks == []


async def test_a_plan_narrowed_after_the_views_check_is_still_404_from_admission(
    worker: FakeWorker, make_key: Any, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Admission reads the plan again (the view's check uses the plan read with the key): a
    plan that changed in between is refused there, and that refusal is OpenAI's 404 too."""
    raw, user = await sync_to_async(on_plan)(make_key, make_user, "wide", allowed_models=[])
    narrow, _ = await sync_to_async(Plan.objects.update_or_create)(
        name="narrow", defaults={"allowed_models": ["other"]}
    )
    admitted, read_ahead = admission._admitted, plans._plans_read

    def narrowed() -> None:
        User.objects.filter(pk=user.pk).update(plan=narrow)

    # Admission's plan is read ahead on a pool thread while the message waits (and read on the
    # admission thread where that read is late): the change comes before either read.
    def read_ahead_after_the_change(keys: list[str]) -> Any:
        narrowed()
        return read_ahead(keys)

    def admitted_after_the_change(**arguments: Any) -> Any:
        narrowed()
        return admitted(**arguments)

    monkeypatch.setattr(plans, "_plans_read", read_ahead_after_the_change)
    monkeypatch.setattr(plans, "_plan_batchers", weakref.WeakKeyDictionary())
    monkeypatch.setattr(admission, "_admitted", admitted_after_the_change)

    response = await post(raw, HELLO)

    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert error["message"] == (
        f"The narrow plan does not include the model {MODEL}; it includes other."
    )
    assert worker.tasks == []


def test_the_platforms_model_refusals_map_to_openais_404() -> None:
    outside = ChatError("forbidden", "Not on the plan.", fields={"model": ["not on the plan"]})
    disabled = ChatError("forbidden", "This account is disabled.")

    assert (from_api_error(outside).status, from_api_error(outside).code) == (
        404,
        "model_not_found",
    )
    assert (from_api_error(disabled).status, from_api_error(disabled).code) == (
        403,
        "account_disabled",
    )


async def test_a_model_outside_the_plan_is_404_even_when_no_worker_serves_it(
    chat_env: Any, make_key: Any, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "queue_served", lambda queue: False)
    raw, _ = await sync_to_async(on_plan)(make_key, make_user, "narrow", allowed_models=["other"])
    allowed, _ = await sync_to_async(on_plan)(make_key, make_user, "wide", allowed_models=[MODEL])

    refused = await post(raw, HELLO)
    unserved = await post(allowed, HELLO)

    # The plan answers first: a model the user may not use says nothing about its workers.
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "model_not_found")
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
