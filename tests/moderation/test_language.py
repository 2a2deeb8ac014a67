"""Other languages: detected offline, and a setting for those the checks were not written for."""

from __future__ import annotations

import pytest
from django.test import override_settings

from moderation import language, registry
from moderation.checks.language import LanguageCheck
from moderation.messages import UNSUPPORTED_LANGUAGE_MESSAGE, blocked_message
from moderation.types import Action, Direction

INPUT = Direction.INPUT
DUTCH = "ik ga morgen met mijn vrienden naar het strand en daarna eten we samen"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("ich gehe morgen mit meinen Freunden ins Kino und danach essen wir", "de"),
        ("mañana voy al cine con mis amigos y después vamos a cenar juntos", "es"),
        ("demain je vais au cinéma avec mes amis et ensuite nous dînons", "fr"),
        (DUTCH, "nl"),
    ],
)
def test_a_sentence_is_detected_in_its_language(text: str, code: str) -> None:
    assert language.detect(text).language == code


@pytest.mark.parametrize("text", ["i want to die", "s e x y  p i c s", "hello"])
def test_a_short_or_spaced_out_text_is_not_called_a_foreign_language(text: str) -> None:
    assert language.detect(text).language in ("", "en")


@pytest.fixture(autouse=True)
def fresh_checks() -> None:
    registry.clear_instances()


def test_by_default_an_unsupported_language_is_flagged_for_review() -> None:
    verdict = LanguageCheck().evaluate(DUTCH, direction=INPUT)
    assert verdict.action is Action.FLAG
    assert verdict.categories == ("unsupported_language",)


@override_settings(MODERATION_UNSUPPORTED_LANGUAGE_ACTION="block")
def test_an_operator_can_refuse_unsupported_languages_with_a_clear_message() -> None:
    verdict = LanguageCheck().evaluate(DUTCH, direction=INPUT)
    assert verdict.action is Action.BLOCK
    assert blocked_message(verdict.categories, direction=INPUT) == UNSUPPORTED_LANGUAGE_MESSAGE


@override_settings(MODERATION_UNSUPPORTED_LANGUAGE_ACTION="check")
def test_check_leaves_unsupported_languages_to_the_other_checks() -> None:
    assert LanguageCheck().evaluate(DUTCH, direction=INPUT).action is Action.ALLOW


@override_settings(MODERATION_LANGUAGES=["en", "nl"])
def test_the_supported_languages_are_a_setting() -> None:
    assert LanguageCheck().evaluate(DUTCH, direction=INPUT).action is Action.ALLOW


def test_supported_languages_pass() -> None:
    text = "demain je vais au cinéma avec mes amis et ensuite nous dînons"
    assert LanguageCheck().evaluate(text, direction=INPUT).action is Action.ALLOW
