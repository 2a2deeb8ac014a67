"""The response cache on the real stack: Daphne, a Celery worker hosting vLLM, PostgreSQL and
Redis. A deterministic question asked twice is answered from the cache the second time, with
the same text, through the same protocol; another user asking the same is not; a stopped
answer is never kept. Over `/v1/`, with the official `openai` client, a hit says so (`cached`,
`X-Cache`, `cached_tokens`) under the same `system_fingerprint`; and with the semantic cache
on, a paraphrased first question is answered from the cache where a near miss is not."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import openai
import psycopg
import pytest

from chat.protocol import server_message_adapter
from chatclient.client import ChatClient, GenerationResult
from inference.prepare import MODEL_CACHE_SECONDS
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

GREEDY = {"temperature": 0, "max_tokens": 40}
MODEL = "smollm2-135m"


def new_client(stack: Stack) -> ChatClient:
    client = ChatClient(stack.base_url)
    client.register(f"cache-{uuid.uuid4().hex[:10]}@example.com", "correct horse battery staple 42")
    client.login()
    return client


def ask(client: ChatClient, question: str, options: dict[str, Any]) -> GenerationResult:
    async def converse() -> GenerationResult:
        async with client.connect() as session:
            accepted = await session.send(question, options=options)
            assert accepted["type"] == "chat.accepted", accepted
            return await session.collect(accepted["generation_id"])

    return asyncio.run(converse())


def usage_record(stack: Stack, generation_id: str) -> dict[str, Any]:
    """The generation's usage record in the stack's database (written just after the done)."""
    deadline = time.monotonic() + 20
    with psycopg.connect(stack.env["DATABASE_URL"], autocommit=True) as connection:
        while True:
            row = connection.execute(
                "SELECT cached, saved_tokens, prompt_tokens, completion_tokens, finish_reason"
                " FROM inference_usagerecord WHERE generation_id = %s",
                (generation_id,),
            ).fetchone()
            if row is not None:
                keys = ("cached", "saved_tokens", "prompt_tokens", "completion_tokens", "reason")
                return dict(zip(keys, row, strict=True))
            assert time.monotonic() < deadline, f"no usage record for {generation_id}"
            time.sleep(0.2)


def test_a_repeated_deterministic_question_is_answered_from_the_cache_for_its_user_only(
    live_stack: Stack,
) -> None:
    question = f"List three fruits that are red. ({uuid.uuid4().hex[:6]})"
    alice, mallory = new_client(live_stack), new_client(live_stack)

    first = ask(alice, question, GREEDY)
    second = ask(alice, question, GREEDY)
    other_user = ask(mallory, question, GREEDY)

    for result in (first, second, other_user):
        assert result.final is not None and result.final["type"] == "generation.done"
        for frame in [*result.deltas, result.final]:
            server_message_adapter.validate_python(frame)
    assert first.final is not None and second.final is not None and other_user.final is not None
    assert first.final["cached"] is False
    # The hit streams like an answer (deltas, then done) and says so.
    assert second.final["cached"] is True
    assert second.deltas and second.streamed_text == second.final["text"]
    assert second.final["text"] == first.final["text"] and first.final["text"].strip()
    assert second.final["finish_reason"] == first.final["finish_reason"]
    # Billed as the free plan says: nothing; the usage record keeps what it saved.
    assert second.final["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}
    hit = usage_record(live_stack, second.generation_id)
    miss = usage_record(live_stack, first.generation_id)
    assert hit["cached"] is True and hit["prompt_tokens"] == hit["completion_tokens"] == 0
    assert hit["saved_tokens"] == miss["prompt_tokens"] + miss["completion_tokens"] > 0
    assert miss["cached"] is False and miss["saved_tokens"] == 0
    # Entries are per user: the same question from someone else is generated again.
    assert other_user.final["cached"] is False
    assert usage_record(live_stack, other_user.generation_id)["cached"] is False
    assert other_user.final["usage"]["completion_tokens"] > 0


def test_a_stopped_answer_is_not_cached(live_stack: Stack) -> None:
    question = f"Write a long story about a lighthouse keeper. ({uuid.uuid4().hex[:6]})"
    options = {"temperature": 0, "max_tokens": 300}
    client = new_client(live_stack)

    async def ask_and_stop() -> GenerationResult:
        async with client.connect() as session:
            accepted = await session.send(question, options=options)
            generation_id = accepted["generation_id"]
            await session.wait_for(
                lambda m: (
                    m.get("type") == "generation.delta" and m.get("generation_id") == generation_id
                )
            )
            await session.send_frame({"type": "generation.stop", "generation_id": generation_id})
            return await session.collect(generation_id)

    stopped = asyncio.run(ask_and_stop())
    assert stopped.final is not None and stopped.final["finish_reason"] == "stopped"

    again = ask(client, question, options)
    third = ask(client, question, options)

    assert again.final is not None and third.final is not None
    assert again.final["cached"] is False  # the stopped answer was not kept
    assert len(again.final["text"]) > len(stopped.final["text"])
    # The complete answer was: the third ask gets it whole.
    assert third.final["cached"] is True and third.final["text"] == again.final["text"]


def test_a_sampled_question_is_never_cached(live_stack: Stack) -> None:
    question = f"Say hello. ({uuid.uuid4().hex[:6]})"
    client = new_client(live_stack)
    sampled = {"temperature": 0.8, "max_tokens": 16}

    ask(client, question, sampled)
    again = ask(client, question, sampled)

    assert again.final is not None and again.final["cached"] is False


# --- over /v1/, with the official openai client -------------------------------------------------


def openai_client(stack: Stack) -> openai.OpenAI:
    client = new_client(stack)
    key = client.request("POST", "/api/keys", {"name": "cache-e2e"})["key"]
    return openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=key, max_retries=0, timeout=120)


def complete(api: openai.OpenAI, question: str) -> tuple[Any, str]:
    """A deterministic completion of `question`, and its `X-Cache` header."""
    raw = api.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": question}], temperature=0, max_tokens=40
    )
    return raw.parse(), raw.headers.get("x-cache", "")


def test_over_the_api_a_hit_says_so_under_the_same_fingerprint(live_stack: Stack) -> None:
    api = openai_client(live_stack)
    question = f"Name two planets. ({uuid.uuid4().hex[:6]})"

    first, first_header = complete(api, question)
    second, second_header = complete(api, question)
    chunks = list(
        api.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": question}],
            temperature=0,
            max_tokens=40,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert (first_header, second_header) == ("miss", "hit")
    assert first.model_extra == {"cached": False} and second.model_extra == {"cached": True}
    assert second.choices[0].message.content == first.choices[0].message.content
    assert first.system_fingerprint and first.system_fingerprint.startswith(f"{MODEL}@")
    assert second.system_fingerprint == first.system_fingerprint
    assert first.usage is not None and first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens > 0 and first.usage.prompt_tokens_details.cached_tokens == 0
    # Billed as the free plan says: nothing; every prompt token billed came from the cache.
    assert second.usage is not None and second.usage.prompt_tokens_details is not None
    assert (second.usage.prompt_tokens, second.usage.completion_tokens) == (0, 0)
    assert second.usage.prompt_tokens_details.cached_tokens == second.usage.prompt_tokens
    # Streamed: the same text, and the last two chunks say it came from the cache.
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == first.choices[0].message.content
    assert [(c.model_extra or {}).get("cached") for c in chunks[-2:]] == [True, True]
    assert {c.system_fingerprint for c in chunks} == {first.system_fingerprint}


def semantic_cache(stack: Stack, *, on: bool) -> None:
    """The model's semantic cache (its admin switch), and the worker's registry re-read."""
    with psycopg.connect(stack.env["DATABASE_URL"], autocommit=True) as connection:
        connection.execute(
            "UPDATE inference_languagemodel SET semantic_cache = %s WHERE name = %s", (on, MODEL)
        )
    time.sleep(MODEL_CACHE_SECONDS + 1)


def test_with_the_semantic_cache_a_paraphrase_hits_and_a_near_miss_does_not(
    live_stack: Stack,
) -> None:
    api = openai_client(live_stack)  # a new user: a partition of its own
    semantic_cache(live_stack, on=True)
    try:
        first, _ = complete(api, "Give me 3 tips for better sleep.")
        paraphrase, paraphrase_header = complete(api, "Can you give me 3 tips for better sleep?")
        # MiniLM scores it 0.974, above the 0.95 threshold: the number check refuses it.
        near_miss, near_miss_header = complete(api, "Give me 5 tips for better sleep.")
    finally:
        semantic_cache(live_stack, on=False)

    assert first.model_extra == {"cached": False}
    assert paraphrase_header == "hit" and paraphrase.model_extra == {"cached": True}
    assert paraphrase.choices[0].message.content == first.choices[0].message.content
    # Another number, the same words otherwise: a different question, generated.
    assert near_miss_header == "miss" and near_miss.model_extra == {"cached": False}
    assert near_miss.usage is not None and near_miss.usage.completion_tokens > 0
