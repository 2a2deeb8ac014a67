"""Security (issue 15, finding 5): a growing allowlist never switches admin rules off, and a
configuration error in the rules never makes the rules check fail open. Real PostgreSQL and
Redis; "a restart" is a process that loads the rules for the first time."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from pytest_django import DjangoAssertNumQueries, Settings

from moderation import pipeline, regexes, state
from moderation.models import AllowlistEntry, ModerationRule
from moderation.services import allowlist_entry_create, moderate_input, rule_create
from moderation.types import Action, Direction

# Each phrase's pattern is about 60 characters: 100 of them are three times the 2,000
# characters that one combined pattern was allowed.
PHRASES = [f"harmless phrase number {index} about bluefish recipes" for index in range(100)]


@pytest.fixture(autouse=True)
def rules_only(settings: Settings) -> None:
    settings.MODERATION_CHECKS = ["rules"]


def _restart() -> None:
    state.reset_local()


def test_admin_rules_still_block_after_a_restart_with_a_long_allowlist(rules_db: None) -> None:
    rule_create(pattern="bluefish", categories=["spam"], action="block")
    for phrase in PHRASES:
        allowlist_entry_create(phrase=phrase)
    assert sum(len(regexes.word_pattern(p)) for p in PHRASES) > 3 * regexes.MAX_PATTERN_LENGTH

    _restart()

    assert moderate_input("buy bluefish now", user_id=None).action == "block"
    # Every phrase, the last one included, is allowlisted, and only the phrase.
    assert moderate_input(PHRASES[-1].upper(), user_id=None).action == "allow"
    assert moderate_input(f"{PHRASES[0]}, buy bluefish", user_id=None).action == "block"


def test_a_running_process_takes_allowlist_growth_past_the_old_limit(rules_db: None) -> None:
    rule_create(pattern="bluefish", categories=["spam"], action="block")
    before = state.snapshot()
    for phrase in PHRASES:
        allowlist_entry_create(phrase=phrase)

    state._local.checked_at = float("-inf")  # the refresh interval has passed
    after = state.snapshot()

    assert after.version != before.version  # not the stale rules
    assert after.allowlist is not None and len(after.allowlist.phrases) == len(PHRASES)
    assert moderate_input(PHRASES[-1], user_id=None).action == "allow"
    assert moderate_input("bluefish", user_id=None).action == "block"


def test_overlapping_allowlist_phrases_are_all_masked_whatever_their_order(
    rules_db: None,
) -> None:
    rule_create(pattern="process", categories=["spam"], action="block")
    allowlist_entry_create(phrase="kill the process")
    allowlist_entry_create(phrase="the process tree")

    assert moderate_input("kill the process tree", user_id=None).action == "allow"
    assert moderate_input("kill the process and the process", user_id=None).action == "block"


def test_a_phrase_whose_pattern_is_over_the_limit_is_refused_at_save(
    rules_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(regexes, "MAX_PATTERN_LENGTH", 40)
    regexes.compile_pattern.cache_clear()

    with pytest.raises(ValidationError) as refused:
        allowlist_entry_create(phrase="a phrase long enough to pass forty characters")

    assert "phrase" in refused.value.message_dict
    assert not AllowlistEntry.objects.exists()


def test_an_uncompilable_phrase_saved_around_the_admin_is_left_out_alone(
    rules_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule_create(pattern="bluefish", categories=["spam"], action="block")
    allowlist_entry_create(phrase="bluefish pie")
    # Written without validation, and too long for the (here lowered) limit.
    AllowlistEntry.objects.create(phrase="bluefish " + "very " * 10 + "long")
    monkeypatch.setattr(regexes, "MAX_PATTERN_LENGTH", 40)
    regexes.compile_pattern.cache_clear()

    _restart()

    assert moderate_input("bluefish pie", user_id=None).action == "allow"
    assert moderate_input("bluefish " + "very " * 10 + "long", user_id=None).action == "block"


def test_a_rule_that_cannot_compile_fails_closed_in_its_direction(rules_db: None) -> None:
    rule_create(pattern="bluefish", categories=["spam"], action="block")
    # Look-behind is not RE2: only a row written around the admin's validation holds it.
    ModerationRule.objects.create(
        pattern="(?<=x)bad", kind="regex", categories=["spam"], direction="output"
    )
    _restart()

    given_input = pipeline.run("hello there", direction=Direction.INPUT)
    given_output = pipeline.run("hello there", direction=Direction.OUTPUT)

    assert given_input.action is Action.ALLOW  # the broken rule is an output rule
    assert given_output.action is Action.BLOCK
    assert given_output.categories == ("moderation_unavailable",)


def test_a_broken_rule_fails_closed_even_when_the_rules_check_is_set_to_fail_open(
    rules_db: None,
) -> None:
    from moderation.models import CheckSetting

    CheckSetting.objects.create(name="rules", failure_policy="open")
    ModerationRule.objects.create(pattern="(a)\\1", kind="regex", categories=["spam"])
    _restart()

    decision = moderate_input("hello there", user_id=None)

    assert decision.action == "block"
    assert decision.categories == ["moderation_unavailable"]


def test_the_allowlist_costs_one_query_per_load(
    rules_db: None, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    for phrase in PHRASES:
        allowlist_entry_create(phrase=phrase)
    _restart()
    with django_assert_max_num_queries(4):  # version, rules, allowlist, check settings
        state.snapshot()
