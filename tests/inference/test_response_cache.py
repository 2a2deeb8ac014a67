"""The response cache's keys, partitions, invalidation, billing and endings, on real Redis,
and a hit streamed by the worker's own stream (deltas, then a done that says cached)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from pytest_django import Settings

from accounts.models import Plan
from chat.generation.record import Ending
from chat.redis_client import redis_client
from inference import streaming
from inference.cache import guard, keys
from inference.cache import store as store_module
from inference.cache.replay import CachedEngine
from inference.cache.service import CacheLookup, cache_lookup, cacheable
from inference.models import LanguageModel
from inference.prepare import GenerationJob, sampling_for
from tests.inference.fakes import (
    FakeClock,
    FakeEngine,
    FakeStore,
    PassThroughModerator,
    RecordingLayer,
)

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def cache_settings(settings: Settings) -> Iterator[Settings]:
    settings.INFERENCE_CACHE_TTL_SECONDS = 600
    settings.INFERENCE_SEMANTIC_CACHE_THRESHOLD = 0.95
    settings.INFERENCE_SEMANTIC_CACHE_ENTRIES = 3
    yield settings
    client = redis_client()
    for found in client.scan_iter(match=keys.redis_key("cache", "*")):
        client.delete(found)


@pytest.fixture
def model(tmp_path: Path) -> LanguageModel:
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"w" * 10)
    return LanguageModel(name="m1", weights=str(weights), default_temperature=0.7)


def greedy(model: LanguageModel, **options: Any) -> Any:
    return sampling_for(model, {"temperature": 0, **options}, prompt_tokens=0)


def ending(**fields: Any) -> Ending:
    values: dict[str, Any] = {
        "generation_id": "gen-1",
        "owner_id": 1,
        "state": "complete",
        "text": "Paris.",
        "seq": 1,
        "finish_reason": "stop",
        "prompt_tokens": 30,
        "completion_tokens": 3,
    }
    return Ending(**(values | fields))


def lookup(model: LanguageModel, owner_id: int = 1, messages: Any = None, **options: Any) -> Any:
    return cache_lookup(
        model=model,
        owner_id=owner_id,
        messages=QUESTION if messages is None else messages,
        sampling=greedy(model, **options),
    )


def remembered(model: LanguageModel, owner_id: int = 1, **fields: Any) -> CacheLookup:
    found = lookup(model, owner_id)
    assert found.hit is None and found.key is not None
    assert found.remember(ending(owner_id=owner_id, **fields), flagged=False)
    return found


# --- keys ---------------------------------------------------------------------------------------


def test_only_greedy_or_seeded_sampling_is_deterministic(model: LanguageModel) -> None:
    assert keys.deterministic(greedy(model))
    assert not keys.deterministic(sampling_for(model, {}, prompt_tokens=0))  # 0.7
    assert keys.deterministic(sampling_for(model, {"seed": 7}, prompt_tokens=0))


def test_the_key_covers_the_whole_context_and_the_sampling(model: LanguageModel) -> None:
    def key(messages: list[dict[str, str]], partition: str = "u1", **options: Any) -> str:
        return keys.answer_key(
            namespace=keys.cache_namespace(model),
            partition=partition,
            messages=messages,
            sampling=greedy(model, **options),
        )

    earlier = [
        {"role": "user", "content": "Let us talk about Germany."},
        {"role": "assistant", "content": "Sure."},
    ]
    system = [{"role": "system", "content": "Answer in French."}]
    base = key(QUESTION)
    assert key(list(QUESTION)) == base
    assert key(earlier + QUESTION) != base  # another earlier turn (GPTCache #8)
    assert key(system + QUESTION) != base
    assert key(QUESTION, max_tokens=10) != base
    assert key(QUESTION, partition="u2") != base
    assert key([{"role": "user", "content": "What is the capital of France? "}]) != base


def test_the_namespace_changes_with_the_models_weights(model: LanguageModel) -> None:
    before = keys.cache_namespace(model)
    assert keys.cache_namespace(model) == before
    weights = Path(model.weights) / "model.safetensors"
    weights.write_bytes(b"v2" * 10)  # re-prepared in place
    assert keys.cache_namespace(model) != before
    renamed = LanguageModel(name="m2", weights=model.weights)
    assert keys.cache_namespace(renamed).startswith("m2@")


def test_entries_are_per_user_unless_the_model_shares(model: LanguageModel) -> None:
    assert keys.partition(model, 1) == "u1" != keys.partition(model, 2)
    model.cache_partition = "shared"
    assert keys.partition(model, 1) == keys.partition(model, 2) == "shared"


def test_only_a_first_question_is_semantic() -> None:
    system = {"role": "system", "content": "Be brief."}
    answer = {"role": "assistant", "content": "Hi."}
    assert keys.first_question(QUESTION) == QUESTION[0]["content"]
    assert keys.first_question([system, *QUESTION]) == QUESTION[0]["content"]
    assert keys.first_question([*QUESTION, answer, *QUESTION]) is None
    assert keys.first_question([answer]) is None


# --- lookups on real Redis ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_remembered_answer_is_found_by_its_user_only(
    cache_settings: Settings, model: LanguageModel
) -> None:
    remembered(model, owner_id=1)

    hit = lookup(model, owner_id=1)
    assert hit.hit is not None and hit.kind == "exact"
    assert hit.hit.text == "Paris." and hit.hit.tokens == 33
    assert lookup(model, owner_id=2).hit is None  # another tenant
    ttl = redis_client().ttl(hit.hit_key)
    assert 0 < ttl <= 600


@pytest.mark.django_db
def test_a_shared_model_answers_every_user(cache_settings: Settings, model: LanguageModel) -> None:
    model.cache_partition = "shared"
    remembered(model, owner_id=1)

    assert lookup(model, owner_id=2).hit is not None


@pytest.mark.django_db
def test_every_entry_dies_when_the_model_version_changes(
    cache_settings: Settings, model: LanguageModel
) -> None:
    remembered(model)
    (Path(model.weights) / "model.safetensors").write_bytes(b"new weights")
    os.utime(Path(model.weights) / "model.safetensors")

    assert lookup(model).hit is None


def test_a_sampled_request_or_a_disabled_cache_is_not_looked_up(
    cache_settings: Settings, model: LanguageModel
) -> None:
    sampled = cache_lookup(
        model=model,
        owner_id=1,
        messages=QUESTION,
        sampling=sampling_for(model, {}, prompt_tokens=0),
    )
    assert sampled.key is None and not sampled.remember(ending(), flagged=False)
    cache_settings.INFERENCE_CACHE_TTL_SECONDS = 0
    assert lookup(model).key is None


@pytest.mark.parametrize(
    ("fields", "flagged"),
    [
        ({"state": "stopped", "finish_reason": "stopped"}, False),
        ({"state": "moderated", "finish_reason": "moderated"}, False),
        ({"state": "failed", "finish_reason": None, "error_code": "engine_error"}, False),
        ({"state": "interrupted", "finish_reason": None}, False),
        ({"text": ""}, False),
        ({}, True),  # output moderation flagged or redacted something
    ],
)
def test_only_complete_unflagged_answers_are_remembered(
    cache_settings: Settings, model: LanguageModel, fields: dict[str, Any], flagged: bool
) -> None:
    assert not cacheable(ending(**fields), flagged=flagged)
    found = lookup(model)
    assert not found.remember(ending(**fields), flagged=flagged)
    assert store_module.answer_get(str(found.key)) is None


def test_answers_cut_at_max_tokens_are_remembered() -> None:
    assert cacheable(ending(finish_reason="length"), flagged=False)


@pytest.mark.django_db
def test_a_hit_that_moderation_now_stops_is_forgotten(
    cache_settings: Settings, model: LanguageModel
) -> None:
    remembered(model)
    hit = lookup(model)
    assert hit.hit is not None

    hit.remember(ending(state="moderated", finish_reason="moderated"), flagged=True)

    assert lookup(model).hit is None


# --- billing --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("billing", "billed"), [("free", (0, 0)), ("full", (30, 3))])
def test_a_hit_is_billed_as_the_plan_says(
    cache_settings: Settings, model: LanguageModel, billing: str, billed: tuple[int, int]
) -> None:
    plan = Plan.objects.create(name=f"p-{billing}", cached_answer_billing=billing)
    user = get_user_model().objects.create_user(f"{billing}@example.org", "pw", plan=plan)
    remembered(model, owner_id=user.pk)
    hit = lookup(model, owner_id=user.pk)
    assert hit.billing == billing
    streamed = ending(owner_id=user.pk, prompt_tokens=0, completion_tokens=3)

    hit.bill(streamed)

    assert streamed.cached and streamed.saved_tokens == 33
    assert (streamed.prompt_tokens, streamed.completion_tokens) == billed
    assert streamed.closing_message().cached is True


# --- the semantic cache (real MiniLM) --------------------------------------------------------


@pytest.mark.django_db
def test_a_paraphrased_first_question_hits_and_a_near_miss_does_not(
    cache_settings: Settings, model: LanguageModel
) -> None:
    model.semantic_cache = True
    remembered(model, owner_id=1)

    def ask(text: str, owner_id: int = 1, system: str | None = None) -> CacheLookup:
        messages = [{"role": "user", "content": text}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        return lookup(model, owner_id, messages=messages)

    paraphrase = ask("what is the capital of france")
    assert paraphrase.hit is not None and paraphrase.kind == "semantic"
    assert paraphrase.similarity is not None and paraphrase.similarity >= 0.95
    assert ask("What is the capital of Germany?").hit is None
    assert ask("what is the capital of france", owner_id=2).hit is None  # another tenant
    # Another context (a system prompt) is another scope (GPTCache #8).
    assert ask("what is the capital of france", system="Answer as a pirate.").hit is None
    # Not a first question: only the exact cache applies.
    later = [*QUESTION, {"role": "assistant", "content": "Paris."}]
    assert ask_turns(model, [*later, {"role": "user", "content": "capital of france?"}]) is None


def ask_turns(model: LanguageModel, messages: list[dict[str, str]]) -> Any:
    return lookup(model, messages=messages).hit


@pytest.mark.django_db
def test_the_semantic_index_keeps_its_bound(cache_settings: Settings, model: LanguageModel) -> None:
    model.semantic_cache = True
    answer_keys = []
    for number in range(5):
        messages = [{"role": "user", "content": f"Question number {number} about birds?"}]
        found = lookup(model, messages=messages)
        assert found.remember(ending(), flagged=False)
        answer_keys.append(str(found.key))
    scope = str(found.scope)
    kept = [key for key in answer_keys if redis_client().hexists(scope, key)]
    assert kept == answer_keys[2:]  # INFERENCE_SEMANTIC_CACHE_ENTRIES, the oldest gone
    assert 0 < redis_client().ttl(scope) <= 600


def test_numbers_and_swapped_directions_are_never_the_same_question() -> None:
    assert guard.same_question("What is 15 times 12?", "what's 15 multiplied by 12")
    assert not guard.same_question("What is 15 times 12?", "What is 15 times 13?")
    assert not guard.same_question("Convert 10 miles to km.", "Convert 10 km to miles.")
    assert not guard.same_question("Is Python faster than Java?", "Is Java faster than Python?")
    assert not guard.same_question("How many cups are in a liter?", "How many liters are in a cup?")
    assert guard.same_question(
        "How do I convert Celsius to Fahrenheit?", "Celsius into Fahrenheit?"
    )


# --- a hit through the worker's stream ---------------------------------------------------------


@pytest.mark.usefixtures("stream_settings", "billing")
async def test_a_hit_streams_deltas_then_a_done_marked_cached(store: FakeStore) -> None:
    clock = FakeClock()
    layer = RecordingLayer(clock)
    answer = store_answer("Paris is the capital of France.")
    cache = CacheLookup(key="k", hit=answer, hit_key="k", kind="exact")
    job = GenerationJob(
        generation_id="gen-1",
        owner_id=7,
        engine=CachedEngine(answer),
        prompt_token_ids=[],
        sampling_params=object(),
        model_name="m",
        cache=cache,
    )

    ending_ = await streaming.generation_stream(
        job,
        layer=layer,
        clock=clock,
        moderator=PassThroughModerator(),
        delta_log=_no_log,
    )

    deltas = layer.events("generation.delta")
    (done,) = layer.events("generation.done")
    assert deltas and "".join(d["text"] for d in deltas) == answer.text
    assert done["cached"] is True and done["text"] == answer.text
    assert done["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}
    assert ending_.cached and ending_.saved_tokens == 25 + 7
    (finish,) = store.finishes
    assert finish["state"] == "complete"


def store_answer(text: str) -> store_module.CachedAnswer:
    return store_module.CachedAnswer(
        text=text,
        finish_reason="stop",
        prompt_tokens=25,
        completion_tokens=7,
        generation_id="gen-0",
        created_at=0.0,
    )


async def _no_log(generation_id: str, seq: int, text: str) -> None:
    return None


class CleanModerator(PassThroughModerator):
    flagged = False


@pytest.mark.usefixtures("stream_settings", "billing")
async def test_a_generated_answer_is_cached_before_its_done_goes_out(
    store: FakeStore, cache_settings: Settings
) -> None:
    # The user's next, identical question may come the moment the done arrives.
    clock = FakeClock()
    found_at_done: list[store_module.CachedAnswer | None] = []
    key = keys.redis_key("cache", "answer", "test", "u7", "abc")

    class Layer(RecordingLayer):
        async def group_send(self, group: str, message: dict[str, Any]) -> None:
            if message["type"] == "generation.done":
                found_at_done.append(store_module.answer_get(key))
            await super().group_send(group, message)

    job = GenerationJob(
        generation_id="gen-1",
        owner_id=7,
        engine=FakeEngine(["Paris", " is the capital."], clock),
        prompt_token_ids=[1, 2, 3],
        sampling_params=object(),
        model_name="m",
        cache=CacheLookup(key=key),
    )

    await streaming.generation_stream(
        job, layer=Layer(clock), clock=clock, moderator=CleanModerator(), delta_log=_no_log
    )

    (cached,) = found_at_done
    assert cached is not None and cached.text == "Paris is the capital."
    assert (cached.prompt_tokens, cached.completion_tokens) == (3, 2)


@pytest.mark.usefixtures("stream_settings", "billing")
async def test_an_answer_is_not_cached_when_the_moderator_cannot_say_it_is_clean(
    store: FakeStore, cache_settings: Settings
) -> None:
    clock = FakeClock()
    key = keys.redis_key("cache", "answer", "test", "u7", "def")
    job = GenerationJob(
        generation_id="gen-1",
        owner_id=7,
        engine=FakeEngine(["Paris."], clock),
        prompt_token_ids=[1],
        sampling_params=object(),
        cache=CacheLookup(key=key),
    )

    await streaming.generation_stream(
        job,
        layer=RecordingLayer(clock),
        clock=clock,
        moderator=PassThroughModerator(),
        delta_log=_no_log,
    )

    assert store_module.answer_get(key) is None


# --- the admin ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_shows_each_models_cache_hit_rate_and_saved_tokens() -> None:
    from django.test import Client

    from inference.models import UsageRecord

    admin = get_user_model().objects.create_superuser("cache-admin@example.org", "pw")
    LanguageModel.objects.create(name="cachy", display_name="Cachy", weights="/nowhere")
    for index, (cached, saved) in enumerate([(True, 40), (True, 2), (False, 0), (False, 0)]):
        UsageRecord.objects.create(
            generation_id=f"g{index}",
            user=admin,
            model="cachy",
            finish_reason="stop",
            cached=cached,
            saved_tokens=saved,
        )
    client = Client()
    client.force_login(admin)

    page = client.get("/admin/inference/languagemodel/?q=cachy")
    usage = client.get("/admin/inference/usagerecord/?cached__exact=1")

    assert page.status_code == usage.status_code == 200
    (row,) = [m for m in page.context["cl"].result_list if m.name == "cachy"]
    assert (row.answer_total, row.hit_total, row.saved_total) == (4, 2, 42)
    assert "50.0% of 4" in page.content.decode()
    assert usage.context["cl"].result_count == 2
    assert "42 tokens saved by the response cache" in usage.content.decode()
