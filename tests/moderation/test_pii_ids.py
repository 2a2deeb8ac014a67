"""IBANs and national identity numbers are redacted; look-alikes with a failing check are not."""

from __future__ import annotations

import pytest

from moderation.checks.pii import (
    PiiCheck,
    bsn_valid,
    dni_valid,
    iban_checksum_valid,
    nir_valid,
    personnummer_valid,
    ssn_valid,
)
from moderation.types import Action, Direction


@pytest.fixture(scope="module")
def pii() -> PiiCheck:
    return PiiCheck()


@pytest.mark.parametrize(
    ("text", "found", "label"),
    [
        (
            "please refund to GB82 WEST 1234 5698 7654 32 thanks",
            "GB82 WEST 1234 5698 7654 32",
            "[iban]",
        ),
        ("IBAN: FR1420041010050500013M02606", "FR1420041010050500013M02606", "[iban]"),
        ("mi cuenta es ES91 2100 0418 4502 0005 1332", "ES91 2100 0418 4502 0005 1332", "[iban]"),
        ("my ssn is 219-09-9999 for the form", "219-09-9999", "[id]"),
        ("mi DNI es 12345678Z, gracias", "12345678Z", "[id]"),
        ("NIE X1234567L", "X1234567L", "[id]"),
        ("codice fiscale RSSMRA85T10A562S per la fattura", "RSSMRA85T10A562S", "[id]"),
        ("CPF 529.982.247-25 na nota", "529.982.247-25", "[id]"),
    ],
)
def test_identifiers_are_redacted(pii: PiiCheck, text: str, found: str, label: str) -> None:
    verdict = pii.evaluate(text, direction=Direction.INPUT)
    assert verdict.action is Action.REDACT
    assert [(text[s.start : s.end], s.label) for s in verdict.spans] == [(found, label)]


@pytest.mark.parametrize(
    "text",
    [
        "ssn 000-12-3456 is never issued",  # area 000
        "ticket 666-12-3456",  # area 666
        "part number 12345678A",  # wrong DNI check letter
        "the XY12 ABCD code and DE12 are labels",  # not an IBAN's length or checksum
        "version 2024-10-01 and 3.14",
    ],
)
def test_look_alikes_are_left_alone(pii: PiiCheck, text: str) -> None:
    assert pii.evaluate(text, direction=Direction.INPUT).action is Action.ALLOW


def test_the_checks_themselves() -> None:
    assert iban_checksum_valid("GB82WEST12345698765432")
    assert not iban_checksum_valid("GB83WEST12345698765432")
    assert ssn_valid("219-09-9999") and not ssn_valid("900-12-3456")
    assert dni_valid("12345678Z") and not dni_valid("12345678A")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        # Blind set D's lines: check digits made up, so found by their keyword.
        (
            "Bonjour, mon numéro de sécu est 1 85 05 78 006 084 36, vous pouvez m'aider ?",
            "1 85 05 78 006 084 36",
        ),
        ("mitt personnummer är 19850412-1234 och jag bor", "19850412-1234"),
        ("kun je helpen? mijn BSN is 111222333 en ik woon", "111222333"),
        # Without a keyword, only numbers whose check digits hold.
        ("voici le 2 69 05 49 588 157 80 pour la mutuelle", "2 69 05 49 588 157 80"),
        ("skicka till 811218-9876 tack", "811218-9876"),
    ],
)
def test_french_swedish_and_dutch_numbers_are_redacted(
    pii: PiiCheck, text: str, found: str
) -> None:
    verdict = pii.evaluate(text, direction=Direction.INPUT)
    assert verdict.action is Action.REDACT
    assert (found, "[id]") in [(text[s.start : s.end], s.label) for s in verdict.spans]


@pytest.mark.parametrize(
    "text",
    [
        "order 2 69 05 49 588 157 81 shipped",  # an NIR's shape, a wrong key, no keyword
        "ticket 811218-9875",  # a personnummer's shape, failing Luhn, no keyword
        "mijn BSN is 111222334",  # the BSN fails the 11-proof
        "tracking number 111222333",  # nine digits without the keyword
    ],
)
def test_national_number_look_alikes_are_left_alone(pii: PiiCheck, text: str) -> None:
    assert pii.evaluate(text, direction=Direction.INPUT).action is Action.ALLOW


def test_every_passport_number_after_the_word_is_redacted(pii: PiiCheck) -> None:
    text = "passport numbers 533380006 and 548812390, can you check the format?"
    spans = pii.evaluate(text, direction=Direction.INPUT).spans
    assert [text[s.start : s.end] for s in spans] == ["533380006", "548812390"]


def test_the_national_number_checks() -> None:
    assert nir_valid("2 69 05 49 588 157 80") and not nir_valid("2 69 05 49 588 157 81")
    assert nir_valid("1 85 05 78 006 084 91") and not nir_valid("1 85 05 78 006 084 36")
    assert personnummer_valid("811218-9876") and not personnummer_valid("19850412-1234")
    assert bsn_valid("111222333") and not bsn_valid("111222334")
