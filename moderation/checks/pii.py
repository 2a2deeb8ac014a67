"""Personal data: e-mail addresses, phone numbers and payment card numbers, redacted.

Regular expressions find candidates; card numbers must pass the Luhn checksum and phone numbers
must be valid for their country per Google's libphonenumber metadata (`phonenumbers`), which
keeps order numbers, dates and version strings from being redacted.
"""

from __future__ import annotations

import re
from typing import ClassVar

import phonenumbers
from django.conf import settings

from moderation.checks import Check
from moderation.types import ALLOW, Action, Direction, Span, Verdict

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b"
)
# 13 to 19 digits, optionally grouped by single spaces or dashes.
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# Cheap gate: phonenumbers' matcher is slow, so run it only when the text has a digit run.
_DIGITS = re.compile(r"\d[\d\s().\-]{5,}\d")


def luhn_valid(number: str) -> bool:
    digits = [int(ch) for ch in number if ch.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


class PiiCheck(Check):
    """Finds e-mail addresses, valid phone numbers and Luhn-valid card numbers; asks for their
    redaction. Runs on code blocks too: a secret pasted in a code block is still personal data."""

    name: ClassVar[str] = "pii"
    skips_code: ClassVar[bool] = False

    def __init__(self, *, threshold: float | None = None) -> None:
        super().__init__(threshold=threshold)
        self.region = settings.MODERATION_PHONE_REGION

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        spans = self.find(text)
        if not spans:
            return ALLOW
        kinds = sorted({span.label.strip("[]") for span in spans})
        return Verdict(
            Action.REDACT,
            categories=("pii",),
            score=1.0,
            reason="personal data: " + ", ".join(kinds),
            spans=tuple(spans),
        )

    def find(self, text: str) -> list[Span]:
        spans = [Span(m.start(), m.end(), "[email]") for m in _EMAIL.finditer(text)]
        cards = [
            Span(m.start(), m.end(), "[card]")
            for m in _CARD.finditer(text)
            if luhn_valid(m.group(0))
        ]
        spans += cards
        if _DIGITS.search(text):
            for match in phonenumbers.PhoneNumberMatcher(
                text, self.region, leniency=phonenumbers.Leniency.VALID
            ):
                if not any(c.start <= match.start < c.end for c in cards):
                    spans.append(Span(match.start, match.end, "[phone]"))
        return spans
