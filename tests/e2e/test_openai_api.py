"""The OpenAI-compatible API with the official `openai` client, on the real stack (Daphne, a
Celery worker hosting vLLM with the default model, PostgreSQL, Redis)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import openai
import psycopg
import pytest

from chatclient.client import ChatClient
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

MODEL = "smollm2-135m"
QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]


def account(stack: Stack) -> ChatClient:
    client = ChatClient(stack.base_url)
    client.register(f"api-{uuid.uuid4().hex[:10]}@example.com", "correct horse battery staple 42")
    client.login()
    return client


def new_key(client: ChatClient, **fields: Any) -> dict[str, Any]:
    return dict(client.request("POST", "/api/keys", {"name": "e2e", **fields}))


def openai_client(stack: Stack, key: str) -> openai.OpenAI:
    # No retries: each refusal is under test, and the SDK would retry 429 and 5xx.
    return openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=key, max_retries=0, timeout=120)


@pytest.fixture
def api(live_stack: Stack) -> openai.OpenAI:
    return openai_client(live_stack, new_key(account(live_stack))["key"])


def test_models_lists_the_default_model(api: openai.OpenAI) -> None:
    models = api.models.list()
    assert MODEL in [model.id for model in models.data]
    assert api.models.retrieve(MODEL).id == MODEL


def test_a_plain_completion_answers_with_usage(api: openai.OpenAI) -> None:
    completion = api.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=32)

    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.model == MODEL
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_max_tokens_cuts_the_answer_with_finish_reason_length(api: openai.OpenAI) -> None:
    completion = api.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
        max_completion_tokens=4,
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 4


def test_a_streamed_completion_ends_with_a_usage_chunk(api: openai.OpenAI) -> None:
    sent_at = time.monotonic()
    stream = api.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        max_tokens=32,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert content_chunks, "no content was streamed"
    first_at = time.monotonic()  # bounded below by the first content chunk's arrival
    print(f"stream of {len(chunks)} chunks in {(first_at - sent_at) * 1000:.0f} ms")

    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish in (["stop"], ["length"])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()


def test_the_same_seed_and_temperature_zero_give_the_same_answer(api: openai.OpenAI) -> None:
    answers = {
        api.chat.completions.create(
            model=MODEL, messages=QUESTION, max_tokens=16, temperature=0, seed=11
        )
        .choices[0]
        .message.content
        for _ in range(2)
    }
    assert len(answers) == 1


def test_errors_come_in_openais_format_with_their_statuses(live_stack: Stack) -> None:
    client = account(live_stack)
    models_only = openai_client(live_stack, new_key(client, scopes=["models"])["key"])
    revoked = new_key(client)
    client.request("DELETE", f"/api/keys/{revoked['id']}")

    with pytest.raises(openai.AuthenticationError) as bad_key:
        openai_client(live_stack, "sk-not-a-key").models.list()
    with pytest.raises(openai.AuthenticationError):
        openai_client(live_stack, revoked["key"]).models.list()
    with pytest.raises(openai.PermissionDeniedError):
        models_only.chat.completions.create(model=MODEL, messages=QUESTION)
    with pytest.raises(openai.NotFoundError) as missing:
        openai_client(live_stack, new_key(client)["key"]).chat.completions.create(
            model="gpt-9", messages=QUESTION
        )
    with pytest.raises(openai.BadRequestError) as two:
        openai_client(live_stack, new_key(client)["key"]).chat.completions.create(
            model=MODEL, messages=QUESTION, n=2
        )

    assert bad_key.value.status_code == 401 and bad_key.value.code == "invalid_api_key"
    assert missing.value.code == "model_not_found"
    assert two.value.param == "n"


def test_input_moderation_refuses_before_the_model(api: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        api.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "I want to kill myself tonight"}]
        )
    assert refused.value.code == "content_filter"


def test_leaving_a_stream_stops_its_generation_and_bills_only_what_was_made(
    live_stack: Stack,
) -> None:
    client = account(live_stack)
    api = openai_client(live_stack, new_key(client)["key"])
    stream = api.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
        max_tokens=400,
        stream=True,
    )
    seen = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            seen += 1
            if seen == 2:
                break
    stream.close()  # the client goes away mid-answer

    # The stop path ends the generation: its bill (the stack's own database) says "stopped",
    # with far fewer tokens than asked for.
    deadline = time.monotonic() + 30
    rows: list[tuple[str, int]] = []
    while time.monotonic() < deadline and not rows:
        rows = usage_rows(live_stack, client.email or "")
        time.sleep(0.5)
    assert len(rows) == 1, rows
    finish_reason, completion_tokens = rows[0]
    assert finish_reason == "stopped"
    assert 0 < completion_tokens < 400


def usage_rows(stack: Stack, email: str) -> list[tuple[str, int]]:
    with psycopg.connect(stack.env["DATABASE_URL"]) as connection:
        return [
            (str(reason), int(tokens))
            for reason, tokens in connection.execute(
                "SELECT u.finish_reason, u.completion_tokens FROM inference_usagerecord u "
                "JOIN accounts_user a ON a.id = u.user_id WHERE a.email = %s",
                (email,),
            ).fetchall()
        ]


def test_moderations_and_embeddings_through_the_sdk(api: openai.OpenAI) -> None:
    moderation = api.moderations.create(
        input=["What a lovely morning for a walk.", "I want to kill myself"]
    )
    embedding = api.embeddings.create(model="all-minilm-l6-v2", input=["bread", "a loaf"])

    assert [result.flagged for result in moderation.results] == [False, True]
    assert [len(item.embedding) for item in embedding.data] == [384, 384]


def test_a_model_outside_the_plan_is_not_listed_and_is_404(live_stack: Stack) -> None:
    client = account(live_stack)
    api = openai_client(live_stack, new_key(client)["key"])
    assert MODEL in [model.id for model in api.models.list()]
    with psycopg.connect(live_stack.env["DATABASE_URL"]) as connection:
        plan = f"narrow-{uuid.uuid4().hex[:6]}"
        (plan_id,) = connection.execute(
            "INSERT INTO accounts_plan (name, description, allowed_models, priority) "
            "VALUES (%s, '', %s, 5) RETURNING id",
            (plan, ["another-model"]),
        ).fetchone()
        connection.execute(
            "UPDATE accounts_user SET plan_id = %s WHERE email = %s", (plan_id, client.email)
        )

    listed = [model.id for model in api.models.list()]
    with pytest.raises(openai.NotFoundError) as retrieved:
        api.models.retrieve(MODEL)
    with pytest.raises(openai.NotFoundError) as completed:
        api.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=4)

    assert listed == []
    assert retrieved.value.code == "model_not_found"
    assert completed.value.code == "model_not_found" and completed.value.param == "model"
    assert f"The {plan} plan does not include it." in completed.value.message


def test_a_client_that_gives_up_on_a_plain_completion_stops_its_generation(
    live_stack: Stack,
) -> None:
    client = account(live_stack)
    key = new_key(client)
    impatient = openai_client(live_stack, key["key"]).with_options(timeout=2.0)

    with pytest.raises(openai.APITimeoutError):  # the SDK closes the connection
        impatient.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
            max_tokens=400,
        )

    deadline = time.monotonic() + 30
    rows: list[tuple[str, int]] = []
    while time.monotonic() < deadline and not rows:
        rows = usage_rows(live_stack, client.email or "")
        time.sleep(0.5)
    usage = client.request("GET", "/api/usage")
    assert len(rows) == 1, rows
    finish_reason, completion_tokens = rows[0]
    assert finish_reason == "stopped"
    assert 0 < completion_tokens < 400
    per_source = {row["source"]: row for row in usage["per_source"]}
    assert per_source["api"]["generations"] == 1
    assert per_source["api"]["completion_tokens"] == completion_tokens
    assert per_source["ws"]["generations"] == 0
    # The same bill under the key that asked for it, named as the user named it.
    assert [
        (row["key_id"], row["name"], row["prefix"], row["generations"], row["completion_tokens"])
        for row in usage["per_key"]
    ] == [(key["id"], key["name"], key["prefix"], 1, completion_tokens)]
