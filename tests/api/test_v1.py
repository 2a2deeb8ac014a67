"""The OpenAI-compatible API in process: keys and scopes, validation, OpenAI's errors and
shapes, the websocket's admission (limits, quota, slots, moderation), and a stateless exchange.
A stand-in worker answers (tests/api/v1_support.py); the rest is real: PostgreSQL, Redis (limits,
channel layer), the store (mongomock), the moderation pipeline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from accounts.models import User
from accounts.services import token_issue
from api.models import ApiGeneration, ApiKey
from api.services import api_key_revoke
from api.v1 import workers
from api.v1.completions import TOO_LONG_MESSAGE
from chat.generation import admission, slots
from chat.store import CONVERSATIONS, MESSAGES, get_db
from inference.models import UsageRecord
from tests.api.v1_support import FakeWorker

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "smollm2-135m"
HELLO = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}]}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, chat_env: Any) -> None:
    monkeypatch.setattr(workers, "queue_served", lambda queue: True)


@pytest.fixture
async def worker(served: None, chat_env: Any, monkeypatch: pytest.MonkeyPatch) -> FakeWorker:
    fake = FakeWorker(loop=asyncio.get_running_loop(), record=chat_env)
    monkeypatch.setattr(admission.celery_app, "send_task", fake.send_task)
    return fake


@pytest.fixture
def key(make_key: Callable[..., tuple[str, ApiKey]]) -> Iterator[tuple[str, ApiKey]]:
    yield make_key()


def auth(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


async def get(raw: str, path: str) -> Any:
    return await AsyncClient().get(path, headers=auth(raw))


async def post(raw: str, body: Any) -> Any:
    return await AsyncClient().post(
        "/v1/chat/completions", json.dumps(body), content_type="application/json", headers=auth(raw)
    )


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


# --- keys and scopes --------------------------------------------------------------------------


async def test_models_lists_the_enabled_models_in_openais_shape(
    served: None, key: tuple[str, ApiKey]
) -> None:
    response = await get(key[0], "/v1/models")

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [model["id"] for model in body["data"]] == [MODEL]
    assert {"id", "object", "created", "owned_by"} <= set(body["data"][0])
    one = await get(key[0], f"/v1/models/{MODEL}")
    assert one.status_code == 200 and one.json()["id"] == MODEL
    missing = await get(key[0], "/v1/models/nope")
    assert missing.status_code == 404 and error_of(missing)["code"] == "model_not_found"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer sk-forged", "Basic abc", "Bearer "],
    ids=["none", "forged", "basic", "empty"],
)
async def test_a_missing_or_unknown_key_is_401(served: None, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await AsyncClient().get("/v1/models", headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_api_key"


async def test_a_revoked_key_stops_working_at_once(served: None, key: tuple[str, ApiKey]) -> None:
    raw, record = key
    assert (await get(raw, "/v1/models")).status_code == 200
    await sync_to_async(api_key_revoke)(user_id=record.user_id, key_id=record.pk)
    assert (await get(raw, "/v1/models")).status_code == 401


async def test_an_account_token_is_not_an_api_key(
    served: None, make_user: Callable[..., User]
) -> None:
    raw, _ = await sync_to_async(token_issue)(user=await sync_to_async(make_user)())
    response = await get(raw, "/v1/models")
    assert response.status_code == 401


async def test_a_key_without_the_scope_is_403(
    served: None, make_key: Callable[..., tuple[str, ApiKey]]
) -> None:
    raw, _ = await sync_to_async(make_key)(scopes=["models"])
    response = await post(raw, HELLO)
    assert response.status_code == 403
    assert error_of(response)["type"] == "permission_error"
    assert (await get(raw, "/v1/models")).status_code == 200


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"n": 2}, "n"),
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": ""}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content",
        ),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages"),
        ({"temperature": 3}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": "9"}, "max_completion_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"seed": 2**70}, "seed"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"logprobs": True}, "logprobs"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"frequency_penalty": 1}, "frequency_penalty"),
        ({"bogus": 1}, "bogus"),
    ],
)
async def test_invalid_or_unsupported_fields_are_400_naming_the_field(
    served: None, key: tuple[str, ApiKey], change: dict[str, Any], param: str
) -> None:
    response = await post(key[0], {**HELLO, **change})
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["type"] == "invalid_request_error" and error["param"] == param


async def test_too_many_messages_or_characters_are_400(
    served: None, key: tuple[str, ApiKey], settings: Any
) -> None:
    settings.API_MAX_MESSAGES = 2
    settings.API_MAX_INPUT_CHARS = 10
    many = [{"role": "user", "content": "a"}] * 3
    assert (await post(key[0], {**HELLO, "messages": many})).status_code == 400
    long = [{"role": "user", "content": "x" * 11}]
    response = await post(key[0], {**HELLO, "messages": long})
    assert response.status_code == 400 and error_of(response)["code"] == "string_above_max_length"


async def test_a_body_that_is_not_json_is_400(served: None, key: tuple[str, ApiKey]) -> None:
    response = await AsyncClient().post(
        "/v1/chat/completions", "{", content_type="application/json", headers=auth(key[0])
    )
    assert response.status_code == 400 and error_of(response)


async def test_an_unknown_model_is_404_model_not_found(
    served: None, key: tuple[str, ApiKey]
) -> None:
    response = await post(key[0], {**HELLO, "model": "gpt-9"})
    assert response.status_code == 404
    assert error_of(response)["code"] == "model_not_found"


async def test_no_worker_serving_the_model_is_503(
    chat_env: Any, key: tuple[str, ApiKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "queue_served", lambda queue: False)
    response = await post(key[0], HELLO)
    assert response.status_code == 503 and response["Retry-After"]
    assert chat_env.tasks == []


# --- the exchange ------------------------------------------------------------------------------


def store_counts(owner_id: int) -> tuple[int, int]:
    db = get_db()
    return (
        len(list(db[CONVERSATIONS].find({"owner_id": owner_id}))),
        len(list(db[MESSAGES].find({"owner_id": owner_id}))),
    )


async def test_a_completion_is_answered_in_openais_shape_billed_and_not_kept(
    worker: FakeWorker, key: tuple[str, ApiKey]
) -> None:
    raw, record = key
    body = {
        **HELLO,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": [{"type": "text", "text": "Say hello."}]},
        ],
        "max_tokens": 10_000_000 // 10,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": "\n\n",
        "seed": 7,
    }
    response = await post(raw, body)

    assert response.status_code == 200, response.content
    completion = response.json()
    assert completion["object"] == "chat.completion" and completion["id"].startswith("chatcmpl-")
    assert completion["model"] == MODEL
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello, world.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert completion["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "total_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    assert completion["cached"] is False and response["X-Cache"] == "miss"
    task = worker.tasks[0]
    generation_id = task["kwargs"]["generation_id"]
    await asyncio.gather(*worker.answered)
    await asyncio.sleep(0.05)
    # Billed, marked as the API's with its key, and nothing of the exchange left in the store.
    usage = await sync_to_async(UsageRecord.objects.get)(generation_id=generation_id)
    assert usage.user_id == record.user_id and usage.completion_tokens == 3
    assert (usage.source, usage.api_key_id) == ("api", record.pk)
    mark = await sync_to_async(ApiGeneration.objects.get)(generation_id=generation_id)
    assert mark.key_id == record.pk and mark.user_id == record.user_id and not mark.stream
    assert await sync_to_async(store_counts)(record.user_id) == (0, 0)
    assert await sync_to_async(slots.held)(owner_id=record.user_id) == []


async def test_the_users_usage_shows_api_completions_under_their_source(
    worker: FakeWorker, key: tuple[str, ApiKey]
) -> None:
    raw, record = key
    assert (await post(raw, HELLO)).status_code == 200
    await asyncio.gather(*worker.answered)
    token, _ = await sync_to_async(token_issue)(user=record.user)

    usage = await AsyncClient().get("/api/usage", headers=auth(token))

    per_source = {row["source"]: row for row in usage.json()["per_source"]}
    assert per_source["api"]["generations"] == 1
    assert per_source["api"]["total_tokens"] == 10  # the stand-in worker's 7 + 3
    assert per_source["ws"]["generations"] == 0
    assert usage.json()["total"]["generations"] == 1


async def test_the_stored_stand_in_carries_every_turn_and_the_clamped_options(
    served: None, chat_env: Any, key: tuple[str, ApiKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeWorker(loop=asyncio.get_running_loop(), hold=True, record=chat_env)
    monkeypatch.setattr(admission.celery_app, "send_task", fake.send_task)
    raw, record = key
    body = {
        **HELLO,
        "stream": True,
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Say hello."},
        ],
        "max_completion_tokens": 999_999,
        "stop": ["END"],
        "seed": 3,
    }
    response = await post(raw, body)
    assert response.status_code == 200
    db = get_db()
    messages = await sync_to_async(lambda: list(db[MESSAGES].find({"owner_id": record.user_id})))()
    conversations = await sync_to_async(
        lambda: list(db[CONVERSATIONS].find({"owner_id": record.user_id}))
    )()

    assert [(m["role"], m["content"]) for m in messages] == [
        ("system", "Be brief."),
        ("user", "Say hello."),
        ("assistant", ""),
    ]
    assert messages[-1]["options"] == {"max_tokens": 2048, "stop": ["END"], "seed": 3}
    assert [c["deleted"] for c in conversations] == [True]  # in no list, lookup or search


async def test_a_streamed_completion_sends_openais_chunks_usage_and_done(
    worker: FakeWorker, key: tuple[str, ApiKey]
) -> None:
    response = await post(
        key[0], {**HELLO, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    raw = b"".join([part async for part in response.streaming_content]).decode()
    frames = [line[len("data: ") :] for line in raw.split("\n\n") if line]

    assert frames[-1] == "[DONE]"
    chunks = [json.loads(frame) for frame in frames[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello, world."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-2]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "total_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    assert chunks[-2]["cached"] is False and chunks[-1]["cached"] is False
    assert all(chunk["usage"] is None for chunk in chunks[:-1])


async def test_output_cut_by_moderation_finishes_with_content_filter(
    worker: FakeWorker, key: tuple[str, ApiKey]
) -> None:
    worker.state, worker.finish_reason, worker.pieces = "moderated", "moderated", ["Part"]
    response = await post(key[0], HELLO)
    assert response.json()["choices"][0]["finish_reason"] == "content_filter"


async def test_input_that_moderation_blocks_is_400_and_never_stored_or_queued(
    worker: FakeWorker, key: tuple[str, ApiKey]
) -> None:
    body = {**HELLO, "messages": [{"role": "user", "content": "I want to kill myself tonight"}]}
    response = await post(key[0], body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "content_filter"
    assert worker.tasks == []
    assert await sync_to_async(store_counts)(key[1].user_id) == (0, 0)


async def test_the_message_rate_is_429_with_retry_after(
    worker: FakeWorker, key: tuple[str, ApiKey], settings: Any
) -> None:
    settings.CHAT_RATE_PER_MINUTE = 1
    assert (await post(key[0], HELLO)).status_code == 200
    response = await post(key[0], HELLO)
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert error_of(response)["code"] == "rate_limit_exceeded"


async def _one_admitted_then_one_refused(api_key: str, settings: Any) -> Any:
    """With one message a minute: "Say hello." is answered, then the response to "Say
    goodbye." (the rate refuses it)."""
    settings.CHAT_RATE_PER_MINUTE = 1
    assert (await post(api_key, HELLO)).status_code == 200
    second = {**HELLO, "messages": [{"role": "user", "content": "Say goodbye."}]}
    return await post(api_key, second)


async def test_a_request_the_message_rate_refuses_is_not_embedded_ahead(
    worker: FakeWorker,
    key: tuple[str, ApiKey],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A flood of refused requests must stay cheap: the prefetch embeds a request's turns
    only for an owner the message rate still admits (limits.input_prefetched_within_rate)."""
    import weakref

    from moderation import prefetch

    embedded: list[str] = []

    def compute(texts: list[str]) -> dict[str, Any]:
        embedded.extend(texts)
        return {}

    monkeypatch.setattr(prefetch, "_batchers", weakref.WeakKeyDictionary())
    monkeypatch.setattr(prefetch, "_semantic_prefetch", compute)
    response = await _one_admitted_then_one_refused(key[0], settings)

    assert response.status_code == 429
    assert embedded == ["Say hello."]


async def test_an_admitted_request_has_its_plan_read_ahead_and_a_refused_one_not(
    worker: FakeWorker,
    key: tuple[str, ApiKey],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The owner's plan is read ahead of the admission thread, batched with other senders'
    (accounts.plans.plans_prefetched), only for a request the message rate admits."""
    import weakref

    from accounts import plans

    read: list[list[str]] = []
    real = plans._plans_read

    def counted(keys: list[str]) -> dict[str, Any]:
        read.append(keys)
        return real(keys)

    monkeypatch.setattr(plans, "_plan_batchers", weakref.WeakKeyDictionary())
    monkeypatch.setattr(plans, "_plans_read", counted)
    response = await _one_admitted_then_one_refused(key[0], settings)

    assert response.status_code == 429
    assert read == [[str(key[1].user_id)]]


async def test_the_daily_quota_is_429_insufficient_quota(
    worker: FakeWorker, key: tuple[str, ApiKey], settings: Any
) -> None:
    settings.CHAT_DAILY_MESSAGE_QUOTA = 1
    assert (await post(key[0], HELLO)).status_code == 200
    response = await post(key[0], HELLO)
    assert response.status_code == 429 and response["Retry-After"]
    assert error_of(response)["code"] == "insufficient_quota"


async def test_concurrent_generations_are_limited_like_the_websockets(
    served: None,
    chat_env: Any,
    key: tuple[str, ApiKey],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 1
    fake = FakeWorker(loop=asyncio.get_running_loop(), hold=True, record=chat_env)
    monkeypatch.setattr(admission.celery_app, "send_task", fake.send_task)
    first = await post(key[0], {**HELLO, "stream": True})  # held by the worker
    second = await post(key[0], HELLO)
    assert first.status_code == 200
    assert second.status_code == 429 and error_of(second)["code"] == "rate_limit_exceeded"


async def test_a_suspended_owners_key_is_refused(
    worker: FakeWorker, key: tuple[str, ApiKey]
) -> None:
    await sync_to_async(User.objects.filter(pk=key[1].user_id).update)(is_active=False)
    assert (await post(key[0], HELLO)).status_code == 401


async def test_a_prompt_the_context_cannot_hold_is_400_context_length_exceeded(
    worker: FakeWorker, key: tuple[str, ApiKey]
) -> None:
    worker.pieces, worker.error_message = [], TOO_LONG_MESSAGE  # the worker's refusal
    response = await post(key[0], HELLO)
    assert response.status_code == 400
    assert error_of(response)["code"] == "context_length_exceeded"


async def test_an_engine_failure_mid_stream_ends_the_stream_with_an_error_event(
    worker: FakeWorker, key: tuple[str, ApiKey]
) -> None:
    worker.error_message = "The model failed to generate an answer. Please try again."
    response = await post(key[0], {**HELLO, "stream": True})
    raw = b"".join([part async for part in response.streaming_content]).decode()
    frames = [line[len("data: ") :] for line in raw.split("\n\n") if line]
    assert frames[-1] == "[DONE]"
    assert json.loads(frames[-2])["error"]["type"] == "server_error"


async def test_an_outage_before_the_generation_starts_is_a_500_in_openais_format(
    worker: FakeWorker, key: tuple[str, ApiKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    def store_down(**_: Any) -> None:
        raise ConnectionError("store unreachable")

    monkeypatch.setattr(admission.services, "conversation_create", store_down)
    response = await post(key[0], HELLO)
    assert response.status_code == 500
    assert error_of(response)["type"] == "server_error"
    assert await sync_to_async(slots.held)(owner_id=key[1].user_id) == []


async def test_a_key_that_keeps_conversations_leaves_the_exchange_in_the_users_list(
    worker: FakeWorker, make_key: Callable[..., tuple[str, ApiKey]]
) -> None:
    from chat import selectors

    raw, record = await sync_to_async(make_key)(store_conversations=True)
    body = {
        **HELLO,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello."},
        ],
    }
    assert (await post(raw, body)).status_code == 200
    await asyncio.gather(*worker.answered)
    await asyncio.sleep(0.05)

    listed, _ = await sync_to_async(selectors.conversation_list)(owner_id=record.user_id)
    assert len(listed) == 1
    messages = await sync_to_async(selectors.message_list)(
        conversation_id=listed[0]["id"], owner_id=record.user_id
    )
    assert [(m["role"], m["content"]) for m in messages] == [
        ("system", "Be brief."),
        ("user", "Say hello."),
        ("assistant", "Hello, world."),
    ]
