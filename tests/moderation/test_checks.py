"""Each built-in check on its own (no pipeline, no database unless the check needs one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moderation.checks.patterns import PatternCheck
from moderation.checks.pii import PiiCheck, luhn_valid
from moderation.checks.profanity import ProfanityCheck
from moderation.checks.toxicity import ToxicityCheck, fused_scorer, library_scorer
from moderation.normalize import normalize
from moderation.types import Action, Direction, redact

INPUT = Direction.INPUT
EVAL_SET = Path(__file__).resolve().parents[2] / "moderation" / "data" / "eval.jsonl"


# --- PII ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail me at jane.doe@example.co.uk today", "mail me at [email] today"),
        ("call (415) 555-2671 now", "call [phone] now"),
        ("ring +44 20 7946 0958", "ring [phone]"),
        ("card 4111 1111 1111 1111 exp 12/27", "card [card] exp 12/27"),
        ("card 5555-5555-5555-4444", "card [card]"),
    ],
)
def test_pii_check_asks_to_redact_personal_data(text: str, expected: str) -> None:
    verdict = PiiCheck().evaluate(text, direction=INPUT)
    assert verdict.action is Action.REDACT
    assert verdict.categories == ("pii",)
    assert redact(text, verdict.spans) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 123456789012 has shipped",
        "version 1.2.3.4 released on 2024-05-01",
        "card 4111 1111 1111 1112",  # fails the Luhn check
        "the answer is 42",
    ],
)
def test_pii_check_leaves_numbers_that_are_not_personal_data(text: str) -> None:
    assert PiiCheck().evaluate(text, direction=INPUT).action is Action.ALLOW


def test_luhn_accepts_valid_and_rejects_altered_numbers() -> None:
    assert luhn_valid("4012888888881881")
    assert not luhn_valid("4012888888881882")
    assert not luhn_valid("1234")


# --- profanity ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["f u c k this", "f*ck off", "sh1t happens", "\uff46\uff55\uff43\uff4b"]
)
def test_profanity_check_flags_obfuscated_swearing(text: str) -> None:
    verdict = ProfanityCheck().evaluate(text, direction=INPUT)
    assert verdict.action is Action.FLAG
    assert verdict.categories == ("profanity",)


@pytest.mark.parametrize(
    "text", ["Scunthorpe United won", "a classic cocktail", "analysis of data"]
)
def test_profanity_check_ignores_innocent_words_containing_swear_words(text: str) -> None:
    assert ProfanityCheck().evaluate(text, direction=INPUT).action is Action.ALLOW


def test_profanity_check_blocks_when_configured_to(settings: object) -> None:
    settings.MODERATION_PROFANITY_ACTION = "block"  # type: ignore[attr-defined]
    assert ProfanityCheck().evaluate("fuck", direction=INPUT).action is Action.BLOCK


# --- toxicity -----------------------------------------------------------------------------


def test_toxicity_check_blocks_abuse_aimed_at_someone() -> None:
    verdict = ToxicityCheck().evaluate("you are so stupid", direction=INPUT)
    assert verdict.action is Action.BLOCK
    assert verdict.categories == ("harassment",)
    assert verdict.score >= 0.9


def test_toxicity_check_only_flags_offensive_text_not_aimed_at_anyone() -> None:
    verdict = ToxicityCheck().evaluate("this fucking code doesn't work", direction=INPUT)
    assert verdict.action is Action.FLAG


@pytest.mark.parametrize("text", ["kill the process", "shoot a photo", "you are a genius"])
def test_toxicity_check_allows_benign_text(text: str) -> None:
    assert ToxicityCheck().evaluate(text, direction=INPUT).action is Action.ALLOW


def test_toxicity_threshold_override_changes_the_decision() -> None:
    lenient = ToxicityCheck(threshold=1.01)
    assert lenient.evaluate("you are so stupid", direction=INPUT).action is Action.FLAG


def test_the_fused_toxicity_score_equals_the_librarys_on_the_evaluation_set() -> None:
    from profanity_check import profanity_check

    fused = fused_scorer(profanity_check.vectorizer, profanity_check.model)
    assert fused is not None
    texts = [json.loads(line)["text"] for line in EVAL_SET.read_text().splitlines() if line]
    assert len(texts) >= 200
    for text in texts:
        expected = float(profanity_check.predict_prob([normalize(text)])[0])
        assert fused(normalize(text)) == pytest.approx(expected, abs=1e-9), text
    assert library_scorer().__name__ == "score"  # the fused form is the one in use


def test_a_model_of_another_form_falls_back_to_the_library() -> None:
    from profanity_check import profanity_check

    assert fused_scorer(profanity_check.vectorizer, object()) is None


# --- built-in patterns --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("go kill yourself", "harassment"),
        ("jews are vermin", "hate"),
        ("write a sex story about a 12 year old girl", "sexual/minors"),
        ("I will kill you", "violence"),
        ("I want to kill myself", "self-harm"),
        ("k1ll   myself", "self-harm"),
        ("how to make a pipe bomb", "illicit/violent"),
        ("how to cook m3th", "illicit"),
    ],
)
def test_pattern_check_blocks_each_category(text: str, category: str) -> None:
    verdict = PatternCheck().evaluate(text, direction=INPUT)
    assert verdict.action is Action.BLOCK
    assert category in verdict.categories


@pytest.mark.parametrize(
    "text",
    [
        "kill the process",
        "how do I kill a zombie process",
        "Scunthorpe",
        "shoot a photo",
        "how to make a bath bomb",
        "I'm going to kill two birds with one stone",
        "what is the suicide rate in japan",
        "how to crack a password hash for my CTF",
    ],
)
def test_pattern_check_allows_benign_lookalikes(text: str) -> None:
    assert PatternCheck().evaluate(text, direction=INPUT).action is Action.ALLOW


def test_pattern_check_reports_every_category_that_matched() -> None:
    verdict = PatternCheck().evaluate(
        "I want to kill myself. how to make a pipe bomb", direction=INPUT
    )
    assert set(verdict.categories) == {"self-harm", "illicit/violent"}
