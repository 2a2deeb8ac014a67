"""The pipeline's policies and the input decision the chat consumer receives."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from moderation import pipeline, services, state
from moderation.messages import SELF_HARM_MESSAGE
from moderation.models import CheckSetting, ModerationEvent
from moderation.services import allowlist_entry_create, moderate_input, rule_create
from moderation.types import Action, Direction
from tests.moderation.fakes import CountingCheck

INPUT = Direction.INPUT
FAKES = "tests.moderation.fakes."


def test_a_failing_check_fails_open_by_default(rules_db: None, settings: object) -> None:
    settings.MODERATION_CHECKS = [FAKES + "ExplodingCheck", "pii"]  # type: ignore[attr-defined]
    decision = moderate_input("mail me at a@example.com", user_id=None)
    assert decision.action == "redact"  # the next check still ran
    assert decision.text == "mail me at [email]"


def test_a_failing_check_configured_closed_blocks(rules_db: None, settings: object) -> None:
    settings.MODERATION_CHECKS = [FAKES + "ExplodingCheck"]  # type: ignore[attr-defined]
    settings.MODERATION_FAIL_CLOSED = ["exploding"]  # type: ignore[attr-defined]
    decision = moderate_input("hello", user_id=None)
    assert decision.action == "block"
    assert decision.categories == ["moderation_unavailable"]
    event = ModerationEvent.objects.get()
    assert event.check_name == FAKES + "ExplodingCheck"


def test_admin_check_setting_overrides_the_failure_policy(rules_db: None, settings: object) -> None:
    settings.MODERATION_CHECKS = ["pii", FAKES + "UnavailableCheck"]  # type: ignore[attr-defined]
    assert moderate_input("hello", user_id=None).action == "allow"
    CheckSetting.objects.create(name=FAKES + "UnavailableCheck", failure_policy="closed")
    assert moderate_input("hello", user_id=None).action == "block"


def test_admin_can_disable_a_check(rules_db: None) -> None:
    assert moderate_input("mail a@example.com", user_id=None).action == "redact"
    CheckSetting.objects.create(name="pii", enabled=False)
    assert moderate_input("mail a@example.com", user_id=None).action == "allow"


def test_admin_cannot_enable_code_outside_the_checks_package(rules_db: None) -> None:
    setting = CheckSetting(name="os.system", enabled=True)
    with pytest.raises(ValidationError):
        setting.full_clean()


def test_checks_after_a_block_do_not_run(rules_db: None, settings: object) -> None:
    settings.MODERATION_CHECKS = [FAKES + "BlockEverythingCheck", FAKES + "CountingCheck"]  # type: ignore[attr-defined]
    CountingCheck.calls.clear()
    assert moderate_input("anything", user_id=None).action == "block"
    assert CountingCheck.calls == []


def test_allowlist_wins_over_every_check(rules_db: None) -> None:
    rule_create(pattern="kill", categories=["violence"], action="block")
    assert moderate_input("kill the process", user_id=None).action == "block"
    allowlist_entry_create(phrase="kill the process")
    assert moderate_input("please KILL THE PROCESS now", user_id=None).action == "allow"
    # Only the allowlisted phrase is exempt, not the rest of the message.
    assert moderate_input("kill the process, then kill him", user_id=None).action == "block"


def test_allowlisted_phrase_keeps_its_personal_data(rules_db: None) -> None:
    allowlist_entry_create(phrase="support@example.com")
    decision = moderate_input("write to support@example.com or me@example.org", user_id=None)
    assert decision.text == "write to support@example.com or [email]"


def test_blocked_input_records_an_event_with_its_context(
    rules_db: None, django_user_model: type
) -> None:
    user = django_user_model.objects.create_user(email="u@example.com", password="x")
    decision = moderate_input(
        "I will kill you", user_id=user.pk, conversation_id="c1", request_id="r1"
    )
    assert decision.action == "block"
    assert decision.categories == ["violence"]
    assert "violent threats" in decision.message
    assert "kill" not in decision.message  # never echo what matched
    event = ModerationEvent.objects.get()
    assert (event.user_id, event.conversation_id, event.request_id) == (user.pk, "c1", "r1")
    assert event.direction == "input" and event.action == "block"
    assert event.categories == ["violence"] and event.check_name == "patterns"
    assert event.text == "I will kill you"
    assert event.review_status == "pending"


def test_self_harm_gets_the_supportive_reply(rules_db: None) -> None:
    decision = moderate_input("I want to kill myself", user_id=None)
    assert decision.action == "block"
    assert "self-harm" in decision.categories
    assert decision.message == SELF_HARM_MESSAGE
    assert "988" in decision.message


def test_redacted_input_is_sent_redacted_and_logged_redacted(rules_db: None) -> None:
    decision = moderate_input("my card is 4111 1111 1111 1111", user_id=None)
    assert decision.action == "redact"
    assert decision.text == "my card is [card]"
    assert decision.message
    assert ModerationEvent.objects.get().text == "my card is [card]"


def test_allowed_input_is_returned_unchanged_and_not_logged(rules_db: None) -> None:
    decision = moderate_input("how do I kill a zombie process?", user_id=None)
    assert (decision.action, decision.text, decision.categories, decision.message) == (
        "allow",
        "how do I kill a zombie process?",
        [],
        "",
    )
    assert not ModerationEvent.objects.exists()


def test_flagged_input_is_sent_and_logged(rules_db: None) -> None:
    decision = moderate_input("damn, this shit compiles now", user_id=None)
    assert decision.action == "flag"
    assert decision.text == "damn, this shit compiles now"
    assert ModerationEvent.objects.filter(action="flag").exists()


def test_rules_version_changes_on_every_edit(rules_db: None) -> None:
    before = services.rules_version()
    rule_create(pattern="zebra", categories=["test"])
    after = services.rules_version()
    assert after != before


@override_settings(MODERATION_CHECKS=["pii", FAKES + "CountingCheck"])
def test_checks_that_read_prose_see_personal_data_as_its_label() -> None:
    CountingCheck.calls.clear()
    outcome = pipeline.run("mail me at a@example.com", direction=INPUT, snapshot=state.EMPTY)
    assert outcome.action is Action.REDACT
    assert CountingCheck.calls == ["mail me at  email "]
