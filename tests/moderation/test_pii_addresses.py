"""Passport numbers given as such and street addresses are redacted (blind set C missed both);
ordinary numbers and phrases beside such words are not."""

from __future__ import annotations

import re

import pytest

from moderation.checks import pii
from moderation.checks.pii import PiiCheck
from moderation.types import Action, Direction


@pytest.fixture(scope="module")
def check() -> PiiCheck:
    return PiiCheck()


@pytest.mark.parametrize(
    ("text", "found", "label"),
    [
        ("my passport no. AB1234567 expires in may", "AB1234567", "[id]"),
        ("passport number: 533380006, fill it in please", "533380006", "[id]"),
        ("mi número de pasaporte es PAA123456", "PAA123456", "[id]"),
        ("send it to 1600 Pennsylvania Avenue, thanks", "1600 Pennsylvania Avenue", "[address]"),
        (
            "I live at 7 Cherry Tree Ln, Boise ID 83702",
            "7 Cherry Tree Ln, Boise ID 83702",
            "[address]",
        ),
        ("party at 9 Elm St Apt 2 on friday", "9 Elm St Apt 2", "[address]"),
        (
            "vivo en calle del Prado 21, 3ºA, 28014 Madrid",
            "calle del Prado 21, 3ºA, 28014 Madrid",
            "[address]",
        ),
        ("moro na Rua das Flores 120", "Rua das Flores 120", "[address]"),
        ("j'habite 4 rue des Lilas à Lyon", "4 rue des Lilas à Lyon", "[address]"),
        ("Lieferung an Gartenstraße 5a bitte", "Gartenstraße 5a", "[address]"),
        ("la consegna è in Via Garibaldi 8", "Via Garibaldi 8", "[address]"),
    ],
)
def test_passports_and_addresses_are_redacted(
    check: PiiCheck, text: str, found: str, label: str
) -> None:
    verdict = check.evaluate(text, direction=Direction.INPUT)
    assert verdict.action is Action.REDACT
    assert (found, label) in [(text[s.start : s.end], s.label) for s in verdict.spans]


@pytest.mark.parametrize(
    "text",
    [
        "here are 3 easy ways to cook rice",
        "my compass 1234567 broke",
        "the passport office opens at 9",
        "I sent it via email on 12 May",
        "un corso di 12 ore",
        "chapter 12, the road ahead",
        "we need 2 more days",
    ],
)
def test_numbers_and_words_near_them_are_not_addresses_or_passports(
    check: PiiCheck, text: str
) -> None:
    assert check.evaluate(text, direction=Direction.INPUT).action is Action.ALLOW


def test_the_new_patterns_repeat_nothing_without_a_bound() -> None:
    # Every quantifier bounded: a match attempt reads a bounded stretch of text, so the scan
    # is linear in the message (issue 14's rule for the built-in checks).
    for pattern in (pii._PASSPORT, pii._ADDRESS):
        unbounded = re.findall(r"(?<!\\)[+*]", pattern.pattern.replace("[+*]", ""))
        assert unbounded == [], pattern.pattern


def test_a_hostile_run_of_digits_and_capitals_is_no_address(check: PiiCheck) -> None:
    text = ("1 A " * 8000)[:32_000]
    assert all(s.label != "[address]" for s in check.find(text))
