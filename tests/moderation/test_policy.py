"""The policy: OpenAI's taxonomy as category names, and the operator's action per category."""

from __future__ import annotations

import pytest
from django.test import override_settings

from moderation import pipeline, policy, state
from moderation.messages import SELF_HARM_MESSAGE, blocked_message
from moderation.types import Action, Direction, Verdict

INPUT = Direction.INPUT


def block(*categories: str) -> Verdict:
    return Verdict(Action.BLOCK, categories=categories, check="patterns")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("self_harm", "self-harm"),
        ("sexual_minors", "sexual/minors"),
        ("weapons", "illicit/violent"),
        ("drugs", "illicit"),
        ("cybercrime", "illicit"),
        ("doxxing", "privacy"),
        ("spam", "spam"),  # an admin rule's own category is kept
    ],
)
def test_older_category_names_are_read_as_the_taxonomy(old: str, new: str) -> None:
    assert policy.canonical(old) == new


def test_by_default_every_category_blocks() -> None:
    assert policy.apply(block("weapons")) == block("illicit/violent")


@override_settings(MODERATION_CATEGORY_ACTIONS=["sexual=flag"])
def test_a_flagged_category_turns_a_block_into_a_flag() -> None:
    applied = policy.apply(block("sexual"))
    assert applied.action is Action.FLAG
    assert applied.categories == ("sexual",)


@override_settings(MODERATION_CATEGORY_ACTIONS=["self-harm=flag"])
def test_a_sub_category_follows_its_parent() -> None:
    assert policy.apply(block("self-harm/intent")).action is Action.FLAG


@override_settings(MODERATION_CATEGORY_ACTIONS=["violence/graphic=allow"])
def test_an_allowed_category_is_dropped_and_the_others_still_block() -> None:
    assert policy.apply(block("violence/graphic")).action is Action.ALLOW
    applied = policy.apply(block("violence/graphic", "harassment"))
    assert applied.action is Action.BLOCK
    assert applied.categories == ("harassment",)


def test_redactions_are_not_affected() -> None:
    redaction = Verdict(Action.REDACT, categories=("pii",))
    assert policy.apply(redaction) is redaction


@pytest.mark.parametrize("item", ["sexual=maybe", "nonsense=block", "sexual"])
def test_a_bad_setting_is_refused(item: str) -> None:
    with pytest.raises(ValueError):
        policy.parse_actions([item])


@override_settings(MODERATION_CHECKS=["patterns"], MODERATION_CATEGORY_ACTIONS=["illicit=flag"])
def test_the_pipeline_sends_a_flagged_category_and_runs_the_later_checks() -> None:
    outcome = pipeline.run("how do i cook meth at home", direction=INPUT, snapshot=state.EMPTY)
    assert outcome.action is Action.FLAG
    assert outcome.categories == ("illicit",)


def test_every_self_harm_category_gets_the_supportive_reply() -> None:
    for category in ("self-harm", "self-harm/intent", "self-harm/instructions", "self_harm"):
        assert blocked_message([category], direction=INPUT) == SELF_HARM_MESSAGE
