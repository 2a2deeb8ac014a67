"""The guard-model check against a local server that speaks the OpenAI chat-completions API."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from moderation.checks import CheckError
from moderation.checks.guard import GuardModelCheck, parse_guard_reply
from moderation.services import moderate_input
from moderation.types import Action, Direction
from tests.moderation.fakes import FakeGuard, fake_guard_server


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
