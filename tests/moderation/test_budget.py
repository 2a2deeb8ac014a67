"""The input time budget (MODERATION_INPUT_BUDGET_MS): a message whose checks have not all run
when the budget is spent is refused as "unchecked" and logged for review; only that message.

Time is a fake clock that the fake slow check moves (`tests.moderation.fakes.CLOCK`): these
tests count what ran and what was recorded, never wall-clock speed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chat.generation.admission import InputBlocked, _moderated_content
from chat.protocol import server_message_adapter
from moderation import pipeline
from moderation.messages import UNCHECKED_MESSAGE
from moderation.models import ModerationEvent
from moderation.services import moderate_input
from moderation.streaming import OutputModerator
from tests.moderation.fakes import CLOCK, CountingCheck, SlowCheck

FAKES = "tests.moderation.fakes."
BUDGET_MS = 100


@pytest.fixture
def budget(rules_db: None, settings: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A 100 ms budget on the fake clock; "slow" texts cost the slow check 5 s of it."""
    monkeypatch.setattr(pipeline, "clock", CLOCK)
    monkeypatch.setattr(SlowCheck, "cost_ms", 50 * BUDGET_MS)
    settings.MODERATION_INPUT_BUDGET_MS = BUDGET_MS  # type: ignore[attr-defined]
    settings.MODERATION_CHECKS = [FAKES + "SlowCheck", FAKES + "CountingCheck"]  # type: ignore[attr-defined]
    SlowCheck.calls.clear()
    CountingCheck.calls.clear()
    yield


def test_a_message_past_the_budget_is_refused_logged_and_the_next_one_passes(
    budget: None, django_user_model: type
) -> None:
    user = django_user_model.objects.create_user(email="u@example.com", password="x")

    refused = moderate_input("a slow one", user_id=user.pk, conversation_id="c1", request_id="r1")
    assert refused.action == "block"
    assert refused.categories == ["unchecked"]
    assert refused.message == UNCHECKED_MESSAGE
    assert CountingCheck.calls == []  # the check after the budget never ran

    event = ModerationEvent.objects.get()
    assert event.check_name == pipeline.BUDGET_CHECK_NAME == "time_budget"
    assert (event.action, event.categories, event.direction) == ("block", ["unchecked"], "input")
    assert (event.user_id, event.conversation_id, event.request_id) == (user.pk, "c1", "r1")
    assert event.text == "a slow one"
    assert event.review_status == "pending"
    assert "after 1 of 2 checks" in event.reason
    assert "not run: " + FAKES + "CountingCheck" in event.reason

    # Fail closed for that message only: the next one gets every check and goes through.
    passed = moderate_input("hello there", user_id=user.pk, request_id="r2")
    assert (passed.action, passed.text) == ("allow", "hello there")
    assert SlowCheck.calls == ["a slow one", "hello there"]
    assert CountingCheck.calls == ["hello there"]
    assert ModerationEvent.objects.count() == 1


def test_the_consumer_gets_moderation_blocked_with_category_unchecked(budget: None) -> None:
    with pytest.raises(InputBlocked) as raised:
        _moderated_content("slow", owner_id=1, conversation_id=None, request_id="r1")
    frame = raised.value.message
    assert (frame.type, frame.request_id, frame.categories) == (
        "moderation.blocked",
        "r1",
        ["unchecked"],
    )
    assert frame.message == UNCHECKED_MESSAGE
    server_message_adapter.validate_json(frame.model_dump_json())  # a valid protocol frame
    assert _moderated_content("fine", owner_id=1, conversation_id=None, request_id="r2") == "fine"


def test_the_budget_is_looked_at_between_checks_so_a_complete_run_stands(
    budget: None, settings: object
) -> None:
    # The slow check is the last one: every check ran, so its (allow) verdict stands.
    settings.MODERATION_CHECKS = [FAKES + "CountingCheck", FAKES + "SlowCheck"]  # type: ignore[attr-defined]
    assert moderate_input("slow but complete", user_id=None).action == "allow"
    assert CountingCheck.calls == ["slow but complete"]
    assert not ModerationEvent.objects.exists()


def test_within_the_budget_nothing_changes(budget: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SlowCheck, "cost_ms", BUDGET_MS - 1)
    assert moderate_input("slow, just in time", user_id=None).action == "allow"
    assert CountingCheck.calls == ["slow, just in time"]


def test_a_budget_of_zero_is_no_budget(budget: None, settings: object) -> None:
    settings.MODERATION_INPUT_BUDGET_MS = 0  # type: ignore[attr-defined]
    assert moderate_input("slow", user_id=None).action == "allow"
    assert CountingCheck.calls == ["slow"]


def test_verdicts_before_the_budget_ran_out_are_recorded_too(
    budget: None, settings: object
) -> None:
    settings.MODERATION_CHECKS = ["pii", FAKES + "SlowCheck", FAKES + "CountingCheck"]  # type: ignore[attr-defined]
    decision = moderate_input("slow: mail me at a@example.com", user_id=None)
    assert (decision.action, decision.categories) == ("block", ["unchecked"])
    events = {e.check_name: e for e in ModerationEvent.objects.all()}
    assert set(events) == {"pii", "time_budget"}
    # Reviewers see the text with personal data replaced, as for any input event.
    assert events["time_budget"].text == "slow: mail me at [email]"
    assert "after 2 of 3 checks" in events["time_budget"].reason


def test_output_windows_have_no_budget(budget: None) -> None:
    # Streamed answers are checked in bounded windows without a budget (docs/moderation.md).
    moderator = OutputModerator(user_id=None, conversation_id=None, generation_id="g1")
    assert moderator.feed("slow words") + moderator.finish() == "slow words"
    assert not moderator.blocked
    assert CountingCheck.calls
