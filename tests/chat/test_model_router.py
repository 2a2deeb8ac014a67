"""The router's decisions over given state (chat/model_router.py): context fit, the policies'
orders, live workers and queue load, with test doubles for the state and the embedder. The
same code reading real PostgreSQL and Redis: tests/chat/test_model_router_live.py."""

from __future__ import annotations

import numpy as np
import pytest

from chat.catalog import ModelInfo
from chat.errors import ChatError
from chat.generation.record import Ending
from chat.model_router import (
    BY_TASK,
    CHEAPEST,
    FASTEST,
    Candidate,
    Classifier,
    Load,
    Policy,
    RouteSpec,
    decide,
    estimate_tokens,
    fits,
    ordered,
    pick,
)

SMALL = Candidate(ModelInfo("small", "inference.small", 2048, 512), price=0.3, speed=40.0)
LARGE = Candidate(ModelInfo("large", "inference.large", 8192, 1024), price=0.6, speed=90.0)
NEW = Candidate(ModelInfo("new", "inference.new", 8192, 1024), price=0.1, speed=None)
IDLE = Load(workers=1, waiting=0, running=0)
LIMITS = {"max_waiting": 4, "slots_per_worker": 2}


def loads(**by_name: Load) -> dict[str, Load]:
    return {f"inference.{name}": load for name, load in by_name.items()}


def names(candidates: list[Candidate]) -> list[str]:
    return [c.info.name for c in candidates]


def test_the_token_estimate_errs_long_and_counts_every_turn() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 10  # ~100 tokens with these BPEs
    assert 100 <= estimate_tokens([text]) <= 200
    assert estimate_tokens([text, text]) == 2 * estimate_tokens([text])
    assert estimate_tokens([]) == 0


def test_a_model_fits_when_the_prompt_leaves_room_for_an_answer() -> None:
    assert fits(SMALL.info, 2048 - 64)
    assert not fits(SMALL.info, 2048 - 63)


def test_cheapest_fastest_and_a_routes_model_first() -> None:
    assert names(ordered([LARGE, SMALL, NEW], CHEAPEST)) == ["new", "small", "large"]
    # Unmeasured models come after the measured ones.
    assert names(ordered([SMALL, NEW, LARGE], FASTEST)) == ["large", "small", "new"]
    assert names(ordered([LARGE, SMALL, NEW], CHEAPEST, first="large")) == ["large", "new", "small"]


def test_the_first_choice_when_it_has_a_worker_and_room() -> None:
    choice = pick([SMALL, LARGE], loads(small=IDLE, large=IDLE), **LIMITS)
    assert (choice.model.name, choice.reason) == ("small", "first_choice")


def test_falls_back_when_the_first_choice_has_no_live_worker() -> None:
    dead = Load(workers=0, waiting=0, running=0)
    choice = pick([SMALL, LARGE], loads(small=dead, large=IDLE), **LIMITS)
    assert (choice.model.name, choice.reason) == ("large", "fallback_no_worker")


def test_falls_back_when_the_first_choice_runs_all_it_can() -> None:
    # 1 worker x 2 slots: one running and one waiting fill it.
    full = Load(workers=1, waiting=1, running=1)
    choice = pick([SMALL, LARGE], loads(small=full, large=IDLE), **LIMITS)
    assert (choice.model.name, choice.reason) == ("large", "fallback_saturated")


def test_when_every_model_is_at_capacity_the_preferred_open_queue_takes_it() -> None:
    full = Load(workers=1, waiting=1, running=1)
    choice = pick([SMALL, LARGE], loads(small=full, large=full), **LIMITS)
    assert (choice.model.name, choice.reason) == ("small", "queued")


def test_a_full_queue_is_skipped_and_all_full_is_busy() -> None:
    overflowing = Load(workers=1, waiting=4, running=2)
    waiting = Load(workers=1, waiting=3, running=2)
    choice = pick([SMALL, LARGE], loads(small=overflowing, large=waiting), **LIMITS)
    assert (choice.model.name, choice.reason) == ("large", "queued")

    with pytest.raises(ChatError) as refused:
        pick([SMALL, LARGE], loads(small=overflowing, large=overflowing), **LIMITS)
    assert refused.value.code == "busy" and refused.value.retry_after


def test_no_live_worker_anywhere_is_busy() -> None:
    dead = Load(workers=0, waiting=0, running=0)
    with pytest.raises(ChatError) as refused:
        pick([SMALL, LARGE], loads(small=dead, large=dead), **LIMITS)
    assert refused.value.code == "busy" and "No model is being served" in refused.value.message


def test_a_prompt_too_long_for_the_small_model_goes_to_the_large_one() -> None:
    state = loads(small=IDLE, large=IDLE)
    long_prompt = 4000
    choice = decide(
        [SMALL, LARGE], Policy(), state, prompt_tokens=long_prompt, classify=None, **LIMITS
    )
    assert choice.model.name == "large"
    with pytest.raises(ChatError) as refused:
        decide([SMALL, LARGE], Policy(), state, prompt_tokens=9000, classify=None, **LIMITS)
    assert refused.value.code == "too_large"


def test_by_task_puts_the_matching_routes_model_first_above_the_threshold() -> None:
    route = RouteSpec("knowledge", "large", ("What is the capital of France?",))
    policy = Policy(strategy=BY_TASK, fallback=CHEAPEST, min_similarity=0.5, routes=(route,))
    state = loads(small=IDLE, large=IDLE)

    near = decide(
        [SMALL, LARGE], policy, state, prompt_tokens=10, classify=lambda: (route, 0.8), **LIMITS
    )
    far = decide(
        [SMALL, LARGE], policy, state, prompt_tokens=10, classify=lambda: (route, 0.2), **LIMITS
    )

    assert (near.model.name, near.route) == ("large", "knowledge")
    assert (far.model.name, far.route) == ("small", None)  # the fallback order: cheapest


def test_by_task_still_falls_back_when_the_routes_model_is_down() -> None:
    route = RouteSpec("knowledge", "large", ("x",))
    policy = Policy(strategy=BY_TASK, routes=(route,))
    state = loads(small=IDLE, large=Load(workers=0, waiting=0, running=0))

    choice = decide(
        [SMALL, LARGE], policy, state, prompt_tokens=10, classify=lambda: (route, 0.9), **LIMITS
    )

    assert (choice.model.name, choice.reason, choice.route) == (
        "small",
        "fallback_no_worker",
        "knowledge",
    )


def keyword_encoder(texts: list[str]) -> np.ndarray:
    """A stand-in embedder: one axis per keyword family, normalised."""
    families = [
        ("capital", "who", "what"),
        ("story", "continue", "once"),
        ("hi", "hello", "thanks"),
    ]
    rows = []
    for text in texts:
        words = text.lower().replace("?", " ").replace(",", " ").split()
        row = np.array([sum(w in family for w in words) for family in families], dtype=float) + 1e-3
        rows.append(row / np.linalg.norm(row))
    return np.stack(rows)


def test_the_classifier_takes_the_route_with_the_nearest_centroid() -> None:
    routes = (
        RouteSpec("knowledge", "large", ("What is the capital of Peru?", "Who wrote Hamlet?")),
        RouteSpec("continuation", "large", ("Continue the story: once", "Once upon a time")),
        RouteSpec("small-talk", "small", ("Hi there", "Thanks, hello")),
    )
    classifier = Classifier(routes, keyword_encoder)

    found, similarity = classifier.classify("Who is the capital's mayor?")
    assert found is not None and found.name == "knowledge" and similarity > 0.9
    found, _ = classifier.classify("hello and thanks")
    assert found is not None and found.name == "small-talk"
    assert classifier.classify("   ") == (None, -1.0)
    assert Classifier((), keyword_encoder).classify("anything") == (None, -1.0)


def test_generation_done_names_the_model_that_wrote_the_answer() -> None:
    ending = Ending(
        generation_id="g1",
        owner_id=1,
        state="complete",
        text="Paris.",
        seq=1,
        finish_reason="stop",
        model_name="gemma3-270m",
    )
    assert ending.closing_message().model == "gemma3-270m"
