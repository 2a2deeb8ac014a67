"""Admin rules: validation, matching, direction, actions."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from moderation.checks.rules import RulesCheck
from moderation.models import ModerationRule
from moderation.services import moderate_input, rule_create, rule_update
from moderation.types import Action, Direction


def test_word_rule_matches_whole_words_case_insensitively(rules_db: None) -> None:
    rule_create(pattern="bluefish", categories=["spam"], action="block")
    check = RulesCheck()
    assert check.evaluate("I like BLUEFISH", direction=Direction.INPUT).action is Action.BLOCK
    assert check.evaluate("bluefishes", direction=Direction.INPUT).action is Action.ALLOW


def test_word_rule_sees_through_obfuscation(rules_db: None) -> None:
    rule_create(pattern="bluefish", categories=["spam"])
    verdict = RulesCheck().evaluate("b l u e f i s h", direction=Direction.INPUT)
    assert verdict.action is Action.BLOCK
    assert verdict.categories == ("spam",)


def test_regex_rule_blocks_matching_text(rules_db: None) -> None:
    rule_create(pattern=r"promo-?code\s+\d{4}", kind="regex", categories=["spam"])
    decision = moderate_input("use PROMOCODE 1234", user_id=None)
    assert decision.action == "block" and decision.categories == ["spam"]


def test_rule_direction_limits_where_it_applies(rules_db: None) -> None:
    rule_create(pattern="bluefish", categories=["spam"], direction="output")
    check = RulesCheck()
    assert check.evaluate("bluefish", direction=Direction.INPUT).action is Action.ALLOW
    assert check.evaluate("bluefish", direction=Direction.OUTPUT).action is Action.BLOCK


def test_redact_rule_replaces_the_match(rules_db: None) -> None:
    rule_create(pattern=r"ACME-\d+", kind="regex", categories=["internal"], action="redact")
    decision = moderate_input("ticket acme-1234 is open", user_id=None)
    assert decision.action == "redact"
    assert decision.text == "ticket [redacted] is open"


def test_flag_rule_lets_the_text_through(rules_db: None) -> None:
    rule_create(pattern="bluefish", categories=["watch"], action="flag")
    assert moderate_input("bluefish", user_id=None).action == "flag"


def test_disabled_rule_does_nothing(rules_db: None) -> None:
    rule = rule_create(pattern="bluefish", categories=["spam"])
    rule_update(rule_id=rule.pk, enabled=False)
    assert moderate_input("bluefish", user_id=None).action == "allow"


@pytest.mark.parametrize(
    "pattern",
    [r"(a+)+(?=b)", r"(x)\1", r"[unclosed"],
)
def test_regex_rule_that_re2_cannot_run_is_rejected_and_not_saved(
    rules_db: None, pattern: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        rule_create(pattern=pattern, kind="regex", categories=["x"])
    assert "pattern" in caught.value.message_dict
    assert not ModerationRule.objects.exists()


def test_catastrophic_backtracking_pattern_runs_in_linear_time(rules_db: None) -> None:
    rule_create(pattern=r"(a+)+$", kind="regex", categories=["x"])
    import time

    started = time.perf_counter()
    RulesCheck().evaluate("a" * 5000 + "!", direction=Direction.INPUT)
    assert time.perf_counter() - started < 0.5


def test_rule_needs_categories(rules_db: None) -> None:
    with pytest.raises(ValidationError):
        rule_create(pattern="x", categories=[])
