"""What `/v1/` tells a client beyond the answer, in process: whether the response cache
answered (`cached`, the `X-Cache` header, `usage.prompt_tokens_details.cached_tokens`), the
version that wrote it (`system_fingerprint`), and `auto` among the models when the plan offers
a choice, the same rule as `/api/models`. Bodies are read with the official `openai` client's
types. A stand-in worker answers (tests/api/v1_support.py); the real cache on the real stack:
tests/e2e/test_response_cache.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from accounts.models import Plan, User
from accounts.services import token_issue
from api.models import ApiKey
from api.v1 import workers
from chat.generation import admission
from inference.models import LanguageModel, ModelVersion
from tests.api.v1_support import FakeWorker, post

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "smollm2-135m"
HELLO = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "seed": 1}


@pytest.fixture
async def hit(chat_env: Any, monkeypatch: pytest.MonkeyPatch) -> FakeWorker:
    """A worker whose every answer is the response cache's (billed in full: 7 prompt tokens)."""
    monkeypatch.setattr(workers, "queue_served", lambda queue: True)
    fake = FakeWorker(loop=asyncio.get_running_loop(), record=chat_env, cached=True)
    monkeypatch.setattr(admission.celery_app, "send_task", fake.send_task)
    return fake


def active_version(label: str) -> None:
    """The default model's active version, labelled `label`."""
    model = LanguageModel.objects.get(name=MODEL)
    updated = ModelVersion.objects.filter(model=model, state="active").update(label=label)
    if not updated:
        ModelVersion.objects.create(model=model, label=label, weights="w", state="active")


async def streamed_chunks(raw: str, body: Any) -> list[dict[str, Any]]:
    response = await post(raw, {**body, "stream": True, "stream_options": {"include_usage": True}})
    text = b"".join([part async for part in response.streaming_content]).decode()
    return [
        json.loads(frame[len("data: ") :])
        for frame in text.split("\n\n")
        if frame.startswith("data: {")
    ]


async def test_a_cached_answer_says_so_in_the_body_the_header_and_the_usage(
    hit: FakeWorker, make_key: Callable[..., tuple[str, ApiKey]]
) -> None:
    await sync_to_async(active_version)("v3")
    raw, _ = await sync_to_async(make_key)()

    response = await post(raw, HELLO)
    chunks = await streamed_chunks(raw, HELLO)
    await asyncio.gather(*hit.answered)

    assert response.status_code == 200, response.content
    assert response["X-Cache"] == "hit"
    completion = ChatCompletion.model_validate(response.json())
    assert completion.system_fingerprint == f"{MODEL}@v3"
    assert completion.model_extra == {"cached": True}
    assert completion.usage is not None and completion.usage.prompt_tokens == 7
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 7
    parsed = [ChatCompletionChunk.model_validate(chunk) for chunk in chunks]
    assert {chunk.system_fingerprint for chunk in parsed} == {f"{MODEL}@v3"}
    # Known only at the end: the finish chunk and the usage chunk carry it.
    finish, usage = parsed[-2], parsed[-1]
    assert finish.choices[0].finish_reason == "stop" and finish.model_extra == {"cached": True}
    assert usage.model_extra == {"cached": True} and usage.usage is not None
    assert usage.usage.prompt_tokens_details is not None
    assert usage.usage.prompt_tokens_details.cached_tokens == 7
    assert all("cached" not in chunk for chunk in chunks[:-2])


async def test_a_generated_answer_is_a_miss_and_a_model_without_versions_has_no_fingerprint(
    chat_env: Any, monkeypatch: pytest.MonkeyPatch, make_key: Callable[..., tuple[str, ApiKey]]
) -> None:
    monkeypatch.setattr(workers, "queue_served", lambda queue: True)
    worker = FakeWorker(loop=asyncio.get_running_loop(), record=chat_env)
    monkeypatch.setattr(admission.celery_app, "send_task", worker.send_task)
    raw, _ = await sync_to_async(make_key)()

    response = await post(raw, HELLO)
    await asyncio.gather(*worker.answered)

    assert response["X-Cache"] == "miss"
    completion = ChatCompletion.model_validate(response.json())
    assert completion.system_fingerprint is None and completion.model_extra == {"cached": False}
    assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 0


# --- auto among the models ---------------------------------------------------------------------


def user_on_plan(make_user: Callable[..., User], allowed: list[str]) -> User:
    plan, _ = Plan.objects.update_or_create(
        name=f"plan-{len(allowed)}", defaults={"allowed_models": allowed}
    )
    return make_user(plan=plan)


def api_models(user: User) -> dict[str, Any]:
    raw_token, _ = token_issue(user=user)
    return dict(Client().get("/api/models", HTTP_AUTHORIZATION=f"Bearer {raw_token}").json())


async def get(raw: str, path: str) -> Any:
    return await AsyncClient().get(path, headers={"Authorization": f"Bearer {raw}"})


async def test_auto_is_listed_when_the_plan_allows_two_models_and_api_models_agrees(
    default_model: Any, make_user: Callable[..., User], make_key: Callable[..., tuple[str, ApiKey]]
) -> None:
    await sync_to_async(LanguageModel.objects.create)(
        name="big", display_name="Big", weights="big", context_length=32768, max_output_tokens=4096
    )
    two = await sync_to_async(user_on_plan)(make_user, [MODEL, "big"])
    one = await sync_to_async(user_on_plan)(make_user, ["big"])
    two_key, _ = await sync_to_async(make_key)(user=two)
    one_key, _ = await sync_to_async(make_key)(user=one)

    listed_two = (await get(two_key, "/v1/models")).json()["data"]
    listed_one = (await get(one_key, "/v1/models")).json()["data"]
    auto_two = await get(two_key, "/v1/models/auto")
    auto_one = await get(one_key, "/v1/models/auto")

    assert [model["id"] for model in listed_two] == [MODEL, "big", "auto"]
    auto = Model.model_validate(listed_two[-1])
    assert (auto.id, auto.object, auto.owned_by) == ("auto", "model", "platform")
    assert auto.model_extra is not None
    assert auto.model_extra["context_length"] == 32768
    assert auto.model_extra["routes_to"] == [MODEL, "big"]
    assert auto_two.status_code == 200 and auto_two.json() == listed_two[-1]
    assert [model["id"] for model in listed_one] == ["big"]
    assert auto_one.status_code == 404 and auto_one.json()["error"]["code"] == "model_not_found"
    # The app's list says the same for the same users (the browser offers "Auto" by it).
    assert (await sync_to_async(api_models)(two))["auto_offered"] is True
    assert (await sync_to_async(api_models)(one))["auto_offered"] is False
