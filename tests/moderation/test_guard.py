"""The guard-model check against a local server that speaks the OpenAI chat-completions API."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from moderation.checks import CheckError
from moderation.checks.guard import (
    GuardModelCheck,
    load_prompt,
    parse_guard_reply,
    unsafe_probability,
)
from moderation.services import moderate_input
from moderation.types import ALLOW, Action, Direction
from tests.moderation.fakes import FakeGuard, fake_guard_server

SHIPPED_PROMPT = Path(__file__).resolve().parents[2] / "moderation" / "data" / "guard_prompt.json"


@pytest.fixture
def guard(settings: object) -> Iterator[FakeGuard]:
    with fake_guard_server() as server:
        settings.MODERATION_GUARD_URL = server.url  # type: ignore[attr-defined]
        settings.MODERATION_GUARD_TIMEOUT_SECONDS = 0.3  # type: ignore[attr-defined]
        settings.MODERATION_GUARD_BREAKER_FAILURES = 2  # type: ignore[attr-defined]
        settings.MODERATION_GUARD_BREAKER_RESET_SECONDS = 1.0  # type: ignore[attr-defined]
        yield server


def test_guard_allows_what_the_model_calls_safe(guard: FakeGuard) -> None:
    verdict = GuardModelCheck().evaluate("hello", direction=Direction.INPUT)
    assert verdict.action is Action.ALLOW
    request = guard.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["messages"] == [{"role": "user", "content": "hello"}]


def test_guard_blocks_unsafe_with_mapped_categories(guard: FakeGuard) -> None:
    guard.reply = "unsafe\nS1,S11"
    verdict = GuardModelCheck().evaluate("text", direction=Direction.INPUT)
    assert verdict.action is Action.BLOCK
    assert verdict.categories == ("violence", "self-harm")


def test_guard_sends_output_as_the_assistant_turn(guard: FakeGuard) -> None:
    GuardModelCheck().evaluate("model text", direction=Direction.OUTPUT)
    messages = guard.requests[0]["body"]["messages"]
    assert messages[-1] == {"role": "assistant", "content": "model text"}


def test_guard_timeout_is_a_check_error(guard: FakeGuard) -> None:
    guard.delay = 1.0
    started = time.monotonic()
    with pytest.raises(CheckError):
        GuardModelCheck().evaluate("text", direction=Direction.INPUT)
    assert time.monotonic() - started < 0.9


def test_guard_circuit_opens_after_repeated_failures_and_recovers(guard: FakeGuard) -> None:
    check = GuardModelCheck()
    guard.status = 500
    for _ in range(2):
        with pytest.raises(CheckError):
            check.evaluate("text", direction=Direction.INPUT)
    calls_before = len(guard.requests)
    with pytest.raises(CheckError, match="circuit is open"):
        check.evaluate("text", direction=Direction.INPUT)
    assert len(guard.requests) == calls_before  # no request while open
    guard.status = 200
    time.sleep(1.05)
    assert check.evaluate("text", direction=Direction.INPUT).action is Action.ALLOW
    assert not check.breaker.is_open


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("safe", (False, [])),
        ("unsafe\nS4", (True, ["S4"])),
        ("  unsafe \n s9, s10 ", (True, ["S9", "S10"])),
    ],
)
def test_parse_guard_reply_reads_llama_guard_format(reply: str, expected: object) -> None:
    assert parse_guard_reply(reply) == expected


def test_parse_guard_reply_rejects_anything_else() -> None:
    with pytest.raises(ValueError):
        parse_guard_reply("I cannot help with that")


@pytest.mark.django_db
def test_guard_failing_closed_blocks_input_with_a_user_safe_message(
    guard: FakeGuard, settings: object
) -> None:
    settings.MODERATION_CHECKS = ["guard"]  # type: ignore[attr-defined]
    settings.MODERATION_GUARD_FAILURE_POLICY = "closed"  # type: ignore[attr-defined]
    guard.status = 503
    decision = moderate_input("hello", user_id=None)
    assert decision.action == "block"
    assert decision.categories == ["moderation_unavailable"]
    assert "try again" in decision.message


@pytest.mark.django_db
def test_guard_failing_open_lets_input_through(guard: FakeGuard, settings: object) -> None:
    settings.MODERATION_CHECKS = ["guard"]  # type: ignore[attr-defined]
    settings.MODERATION_GUARD_FAILURE_POLICY = "open"  # type: ignore[attr-defined]
    guard.status = 503
    assert moderate_input("hello", user_id=None).action == "allow"


@pytest.mark.django_db
def test_guard_is_not_called_unless_enabled(guard: FakeGuard) -> None:
    moderate_input("hello there", user_id=None)
    assert guard.requests == []


def first_word(*alternatives: tuple[str, float], blank_first: bool = False) -> dict[str, object]:
    """An OpenAI `logprobs` whose first word has these (token, probability) alternatives."""
    tops = [{"token": t, "logprob": math.log(p)} for t, p in alternatives]
    content = [{"token": alternatives[0][0], "logprob": tops[0]["logprob"], "top_logprobs": tops}]
    if blank_first:
        content.insert(0, {"token": "\n\n", "logprob": 0.0, "top_logprobs": []})
    return {"content": content}


@pytest.mark.parametrize(
    ("logprobs", "expected"),
    [
        (first_word(("safe", 0.6), ("uns", 0.2), ("The", 0.2)), 0.25),
        (first_word(("unsafe", 0.3), ("Safe", 0.1), ("un", 0.1)), 0.8),
        # Llama Guard 3 writes two newlines before its verdict.
        (first_word(("unsafe", 0.9), ("safe", 0.1), blank_first=True), 0.9),
        (first_word(("You", 0.9), ("The", 0.1)), None),  # neither word: no score
        (None, None),
        ({"content": []}, None),
    ],
)
def test_unsafe_probability_weighs_the_first_words_alternatives(
    logprobs: object, expected: float | None
) -> None:
    score = unsafe_probability(logprobs)
    assert score == (pytest.approx(expected) if expected is not None else None)


def test_guard_asks_for_logprobs_and_blocks_on_the_score_over_the_threshold(
    guard: FakeGuard, settings: object
) -> None:
    guard.reply = "safe"  # the sampled word loses to the score: P(unsafe) is 0.7
    guard.logprobs = first_word(("safe", 0.3), ("unsafe", 0.7))
    verdict = GuardModelCheck().evaluate("text", direction=Direction.INPUT)
    assert guard.requests[0]["body"]["logprobs"] is True
    assert guard.requests[0]["body"]["top_logprobs"] == 20
    assert verdict.action is Action.BLOCK
    assert verdict.categories == ("unsafe",)
    assert verdict.score == pytest.approx(0.7)
    assert GuardModelCheck(threshold=0.8).evaluate("t", direction=Direction.INPUT) is ALLOW


def test_guard_without_logprobs_setting_sends_none(guard: FakeGuard, settings: object) -> None:
    settings.MODERATION_GUARD_LOGPROBS = False  # type: ignore[attr-defined]
    GuardModelCheck().evaluate("text", direction=Direction.INPUT)
    assert "logprobs" not in guard.requests[0]["body"]


def test_guard_reads_a_score_when_the_text_is_not_a_verdict(guard: FakeGuard) -> None:
    guard.reply = "I think this is fine"
    guard.logprobs = first_word(("safe", 0.9), ("uns", 0.1))
    assert GuardModelCheck().evaluate("text", direction=Direction.INPUT) is ALLOW
    guard.logprobs = None
    with pytest.raises(CheckError):
        GuardModelCheck().evaluate("text", direction=Direction.INPUT)


def test_guard_puts_the_text_into_the_classification_prompt(
    guard: FakeGuard, settings: object
) -> None:
    settings.MODERATION_GUARD_PROMPT_FILE = str(SHIPPED_PROMPT)  # type: ignore[attr-defined]
    text = "what is {message} or {0} in str.format?"
    for direction in Direction:
        GuardModelCheck().evaluate(text, direction=direction)
    shipped = json.loads(SHIPPED_PROMPT.read_text())
    for request in guard.requests:
        messages = request["body"]["messages"]
        assert messages[:-1] == shipped[:-1]
        assert messages[-1] == {"role": "user", "content": "Message to classify: " + text}


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"role": "user", "content": "{message}"}),
        json.dumps([{"role": "user", "content": "no placeholder"}]),
        json.dumps([{"role": "tool", "content": "{message}"}]),
        json.dumps(
            [{"role": "user", "content": "{message}"}, {"role": "assistant", "content": "x"}]
        ),
        json.dumps(
            [{"role": "system", "content": "{message}"}, {"role": "user", "content": "{message}"}]
        ),
        json.dumps([{"role": "user", "content": "{message} {message}"}]),
        json.dumps([{"role": "user", "content": "{message}", "name": "x"}]),
    ],
)
def test_a_malformed_prompt_file_is_refused_at_start(tmp_path: Path, content: str) -> None:
    path = tmp_path / "prompt.json"
    path.write_text(content)
    with pytest.raises(ImproperlyConfigured, match="MODERATION_GUARD_PROMPT_FILE"):
        load_prompt(str(path))


def test_a_missing_prompt_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="MODERATION_GUARD_PROMPT_FILE"):
        load_prompt(str(tmp_path / "absent.json"))


@pytest.mark.django_db
def test_a_failed_guard_fails_closed_on_a_text_flagged_in_a_listed_category(
    guard: FakeGuard, settings: object
) -> None:
    settings.MODERATION_CHECKS = ["tests.moderation.fakes.FlagSelfHarmCheck", "guard"]  # type: ignore[attr-defined]
    settings.MODERATION_GUARD_FAILURE_POLICY = "open"  # type: ignore[attr-defined]
    guard.status = 503
    assert moderate_input("a question", user_id=None).action == "flag"  # fails open
    settings.MODERATION_FAIL_CLOSED_CATEGORIES = ["self-harm"]  # type: ignore[attr-defined]
    decision = moderate_input("a question", user_id=None)
    assert decision.action == "block"
    assert decision.categories == ["self-harm/instructions"]
    settings.MODERATION_FAIL_CLOSED_CATEGORIES = ["violence"]  # type: ignore[attr-defined]
    assert moderate_input("a question", user_id=None).action == "flag"
