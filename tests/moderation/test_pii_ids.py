"""IBANs and national identity numbers are redacted; look-alikes with a failing check are not."""

from __future__ import annotations

import re
import time

import pytest

from moderation.checks import pii as pii_module
from moderation.checks.pii import (
    PiiCheck,
    bsn_valid,
    cnp_valid,
    dni_valid,
    iban_checksum_valid,
    nir_valid,
    personnummer_valid,
    pesel_valid,
    ssn_valid,
    steuer_id_valid,
    tc_kimlik_valid,
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


@pytest.mark.parametrize(
    ("text", "found", "label"),
    [
        ("Seine Steuer-ID ist 86 095 742 719, er wohnt in Kassel.", "86 095 742 719", "[id]"),
        ("Steueridentifikationsnummer: 86095742719.", "86095742719", "[id]"),
        ("IdNr. 86095742719 bitte eintragen", "86095742719", "[id]"),
        ("her BSN is 111222333. does the form look right?", "111222333", "[id]"),
        ("his citizen service number: 1112.22.333", "1112.22.333", "[id]"),
        ("Annemin TC kimlik numaras\u0131 10000000146, formda nereye?", "10000000146", "[id]"),
        ("T.C. Kimlik No: 10000000146", "10000000146", "[id]"),
        ("text her on +44 7700 900318 when you land", "+44 7700 900318", "[phone]"),
        ("call 07700 900123 after six", "07700 900123", "[phone]"),
        ("office: +44 (0)20 7946 0018.", "+44 (0)20 7946 0018", "[phone]"),
        ("mob 07700900123", "07700900123", "[phone]"),
        ("My SIN is 527 614 893 and I need to apply for EI.", "527 614 893", "[id]"),
        ("num\u00e9ro d'assurance sociale : 046-454-286, merci", "046-454-286", "[id]"),
        ("her social insurance number 046454286 is on the form", "046454286", "[id]"),
        ("National Insurance number JT 48 21 93 B, for payroll", "JT 48 21 93 B", "[id]"),
        ("NI: AB123456C", "AB123456C", "[id]"),
        ("Personalausweisnummer L01X00T47, bitte eintragen", "L01X00T47", "[id]"),
        ("meine Ausweisnummer ist T220001293 (mit Prüfziffer)", "T220001293", "[id]"),
    ],
)
def test_german_turkish_dutch_english_canadian_and_uk_numbers_are_redacted(
    pii: PiiCheck, text: str, found: str, label: str
) -> None:
    verdict = pii.evaluate(text, direction=Direction.INPUT)
    assert verdict.action is Action.REDACT
    assert [(text[s.start : s.end], s.label) for s in verdict.spans] == [(found, label)]


@pytest.mark.parametrize(
    "text",
    [
        "Steuer-ID 86095742718 (wrong check digit)",
        "order number 86095742719 shipped",  # eleven digits without the keyword
        "kimlik no 10000000147",  # the second check digit fails
        "TC 00000000000",  # the first digit may not be 0
        "serial 0770090012345",  # longer than a UK mobile
        "invoice 44 7700 900318",  # no plus sign: not the country code
        "Personalausweis verloren, was muss ich 2024 tun?",  # no number
        "Personalausweis beantragt am 12.03.2024",  # a date, not the number
    ],
)
def test_tax_identity_and_uk_look_alikes_are_left_alone(pii: PiiCheck, text: str) -> None:
    assert pii.evaluate(text, direction=Direction.INPUT).action is Action.ALLOW


def test_the_german_and_turkish_checks() -> None:
    assert steuer_id_valid("86095742719") and not steuer_id_valid("86095742718")
    assert steuer_id_valid("57 392 184 645")
    assert tc_kimlik_valid("10000000146") and not tc_kimlik_valid("10000000147")
    assert tc_kimlik_valid("38461520706") and not tc_kimlik_valid("38461520716")


def test_the_new_number_patterns_repeat_nothing_without_a_bound() -> None:
    # Every quantifier bounded: linear in the message (issue 14's rule for the built-in checks).
    patterns = (
        pii_module._STEUER_ID_KEYWORD,
        pii_module._TC_KIMLIK_KEYWORD,
        pii_module._UK_PHONE,
        pii_module._BSN_KEYWORD,
        pii_module._CNP_KEYWORD,
        pii_module._PESEL_KEYWORD,
        pii_module._SIN_KEYWORD,
        pii_module._UK_NINO,
        pii_module._AUSWEIS_KEYWORD,
    )
    for pattern in patterns:
        assert re.findall(r"(?<!\\)[+*]", pattern.pattern) == [], pattern.pattern


def test_hostile_digit_runs_after_the_keywords_are_judged_quickly(pii: PiiCheck) -> None:
    text = ("Steuer-ID TC kimlik no +44 07" + " 1" * 10) * 1000
    started = time.perf_counter()
    pii.evaluate(text, direction=Direction.INPUT)
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Numele meu e Ion, CNP 1870915400123, vă rog completați cererea.", "1870915400123"),
        ("cod numeric personal: 2990101410015", "2990101410015"),
        ("Mój PESEL to 44051401359, proszę wpisać go do formularza.", "44051401359"),
    ],
)
def test_romanian_and_polish_numbers_are_redacted(pii: PiiCheck, text: str, found: str) -> None:
    verdict = pii.evaluate(text, direction=Direction.INPUT)
    assert verdict.action is Action.REDACT
    assert [(text[s.start : s.end], s.label) for s in verdict.spans] == [(found, "[id]")]


@pytest.mark.parametrize(
    "text",
    [
        "CNP 1870915400124",  # the check digit fails
        "PESEL 44051401358",  # the check digit fails
        "comanda 1870915400123 a fost expediată",  # thirteen digits without the keyword
    ],
)
def test_romanian_and_polish_look_alikes_are_left_alone(pii: PiiCheck, text: str) -> None:
    assert pii.evaluate(text, direction=Direction.INPUT).action is Action.ALLOW


def test_the_romanian_and_polish_checks() -> None:
    assert cnp_valid("1870915400123") and not cnp_valid("1870915400124")
    assert pesel_valid("44051401359") and not pesel_valid("44051401358")


def test_a_phone_number_is_read_in_the_plan_of_its_messages_language(pii: PiiCheck) -> None:
    spanish = "Escribe a mi casero que ya pagué el alquiler; mi móvil nuevo es 612 48 93 07."
    verdict = pii.evaluate(spanish, direction=Direction.INPUT)
    assert [(spanish[s.start : s.end], s.label) for s in verdict.spans] == [
        ("612 48 93 07", "[phone]")
    ]
    assert pii.phone_regions(spanish) == ["US", "ES"]
    # In an English message the same digits are no US number, and nothing else is read.
    english = "Tell my landlord the rent is paid; reference 612 48 93 07 on the transfer."
    assert pii.phone_regions(english) == ["US"]
    assert pii.evaluate(english, direction=Direction.INPUT).action is Action.ALLOW


def test_a_long_message_is_read_in_the_configured_plan_only(pii: PiiCheck) -> None:
    # Each plan is one more pass of phonenumbers' slow matcher: bounded to short messages.
    text = "Mi móvil es 612 48 93 07. " + "Gracias por todo, de verdad. " * 80
    assert len(text) > pii_module.REGIONAL_PHONE_CHARS
    assert pii.phone_regions(text) == ["US"]


@pytest.mark.parametrize(
    "text",
    [
        "I sin 123 456 789 times a day",  # "sin" in lower case is the word
        "part QQ 12 34 56 C",  # Q is never a National Insurance prefix
        "code GB 12 34 56 A",  # GB is an excluded prefix
        "jt 48 21 93 b",  # in lower case: not written as the number is
    ],
)
def test_insurance_number_look_alikes_are_left_alone(pii: PiiCheck, text: str) -> None:
    assert pii.evaluate(text, direction=Direction.INPUT).action is Action.ALLOW


def test_a_uk_address_keeps_its_postcode() -> None:
    text = "new address Flat 2, 18 Elm Grove, London SE15 5DE. How do I register with a GP?"
    spans = PiiCheck().find(text)
    assert [(text[s.start : s.end], s.label) for s in spans] == [
        ("18 Elm Grove, London SE15 5DE", "[address]")
    ]
