"""Personal data: e-mail addresses, phone numbers, payment card numbers, IBANs, national
identity numbers (US SSN, Spanish DNI/NIE, Italian codice fiscale, Brazilian CPF, French NIR,
Swedish personnummer, Dutch BSN, German tax ID, Turkish T.C. kimlik number), passport numbers
given as such, UK phone numbers, and street addresses, redacted.

Regular expressions find candidates; each kind must then pass its own check (Luhn for cards;
an IBAN's country length or its mod 97 check; a DNI's check letter; the ranges the SSA never
issues; a codice fiscale's or CPF's shape is distinctive enough), and phone numbers must be
valid for their country per Google's libphonenumber metadata (`phonenumbers`), which keeps
order numbers, dates and version strings from being redacted.
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


# An IBAN: country, two check digits, then 11 to 30 letters or digits, in groups of four or not.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
# A US social security number, written with dashes (nine bare digits are too often something
# else); the ranges never issued are refused in `ssn_valid`.
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_DNI = re.compile(r"\b[XYZ]?\d{7,8}-?[A-Z]\b")
_CODICE_FISCALE = re.compile(r"\b[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]\b")
_CPF = re.compile(r"(?<![\d.])\d{3}\.\d{3}\.\d{3}-\d{2}(?![\d-])")
# A passport number is 6 to 9 letters and digits, too common a shape to find alone: only those
# within PASSPORT_WINDOW characters after the word, in the supported languages and Dutch,
# Swedish and Polish ("passport numbers 533380006 and 548812390").
_PASSPORT = re.compile(
    r"\b(?i:passports?|passeports?|pasaportes?|passaport[oi]|passaportes?|reisep[aä]ss?e?"
    r"|paspoort|pass(?=nummer|nr)|paszport)"
)
_PASSPORT_ID = re.compile(r"\b(?=[A-Z]{0,3}\d)[A-Z0-9]{6,9}\b")
PASSPORT_WINDOW = 60
# National numbers whose shape alone is common: found after their keyword, up to 40 characters
# without digits between, where any number of the shape is redacted (a mistyped check digit is
# still the number a person gave as theirs, as for IBANs); without the keyword, only a number
# whose check digits hold. France's NIR (sex, year, month, department, commune, order, key
# 97 - number mod 97), Sweden's personnummer (date, serial, Luhn on the last ten digits), the
# Dutch BSN (nine digits, always with its keyword and the 11-proof).
_NIR_SHAPE = r"[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[ABab]) ?\d{3} ?\d{3}(?: ?\d{2})"
_NIR = re.compile(rf"(?<!\d)(?<!\d )({_NIR_SHAPE})(?! ?\d)")
_NIR_KEYWORD = re.compile(
    r"\b(?i:s[ée]cu(?:rit[ée] sociale)?|nir|insee|carte vitale)\b[^\d\n]{0,40}"
    rf"({_NIR_SHAPE})(?! ?\d)"
)
# A personnummer's date (a samordningsnummer adds 60 to the day), then its serial and check
# digit; alone it needs its separator, after its keyword not.
_PERSONNUMMER_DATE = r"(?:19|20)?\d{2}(?:0[1-9]|1[0-2])(?:[0-2]\d|3[01]|[6-8]\d|9[01])"
_PERSONNUMMER_SHAPE = rf"{_PERSONNUMMER_DATE}[-+]?\d{{4}}"
_PERSONNUMMER = re.compile(rf"(?<![\d-])({_PERSONNUMMER_DATE}[-+]\d{{4}})(?![\d-])")
_PERSONNUMMER_KEYWORD = re.compile(
    rf"\b(?i:personnumm?er|personnr|samordningsnummer)\b[^\d\n]{{0,40}}({_PERSONNUMMER_SHAPE})(?![\d-])"
)
_BSN_KEYWORD = re.compile(
    r"\b(?i:bsn|burgerservicenummer|sofi-?nummer|citizen service number)\b[^\d\n]{0,40}"
    r"(\d{4}\.?\d{2}\.?\d{3}|\d{9})(?!\.?\d)"
)
# The German tax ID (Steuer-Identifikationsnummer): eleven digits, the first not 0, the last a
# check digit (ISO 7064 MOD 11,10); after its keyword, since eleven digits are any number.
_STEUER_ID_KEYWORD = re.compile(
    r"\b(?i:steuer-?id(?:entifikationsnummer)?|steuer-identifikationsnummer|idnr|id-nr"
    r"|identifikationsnummer)\b\.?[^\d\n]{0,40}"
    r"([1-9]\d ?\d{3} ?\d{3} ?\d{3}|[1-9]\d{10})(?!\.?\d)"
)
# The Turkish identity number (T.C. kimlik no): eleven digits, the first not 0, two check
# digits; after its keyword.
_TC_KIMLIK_KEYWORD = re.compile(
    r"(?:\b(?i:t\.?\s?c\.?(?:\s?kimlik)?|kimlik)(?:\s?(?i:no|numaras[\u0131i]|numara|nr))?\.?)"
    r"[^\d\n]{0,40}(?<!\d)([1-9]\d{10})(?!\.?\d)"
)
# The Romanian personal numeric code (CNP): thirteen digits, the first 1-9, a check digit; and
# the Polish PESEL: eleven digits, a check digit. After their keyword: any long number has their
# shape, and one in ten or eleven passes a check digit by chance.
_CNP_KEYWORD = re.compile(
    r"\b(?i:cnp|cod numeric personal)\b\.?[^\d\n]{0,40}(?<!\d)([1-9]\d{12})(?!\.?\d)"
)
_PESEL_KEYWORD = re.compile(r"\b(?i:pesel)\b\.?[^\d\n]{0,40}(?<!\d)(\d{11})(?!\.?\d)")
# The Canadian social insurance number: nine digits, 3-3-3; after its keyword ("SIN" in
# capitals, the word "sin" is a word), checksum or not: a mistyped one is still someone's.
_SIN_KEYWORD = re.compile(
    r"(?:\bSIN|\b(?i:social insurance number|num[ée]ro d'assurance sociale|nas))\b\.?"
    r"[^\d\n]{0,40}(?<!\d)(\d{3}[ -]?\d{3}[ -]?\d{3})(?![\d-])"
)
# The German identity card's number: nine letters and digits (digits and the letters C, F-H,
# J-N, P, R, T, V-Z), a check digit sometimes written after it; after its keyword, where the
# shape is not a word.
_AUSWEIS_KEYWORD = re.compile(
    r"\b(?i:personalausweis(?:nummer|-?nr)?|ausweisnummer|ausweis-?nr|perso-?nummer)\b\.?"
    r"[^\d\n]{0,40}?\b((?=[A-Z]{0,8}\d)[CFGHJ-NPRTV-Z0-9]{9}\d?)\b"
)
# The UK National Insurance number: two letters (not D, F, I, Q, U or V; the second not O),
# six digits in pairs, a letter A-D; in capitals. Distinctive enough without its keyword.
_UK_NINO = re.compile(
    r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
)
# UK numbers, which `phonenumbers` only reads as valid in its GB region, and not at all in the
# ranges set aside for examples and fiction (07700 900xxx): +44 and ten digits, or a mobile's
# 07 and nine digits, spaced or not.
_UK_PHONE = re.compile(
    r"(?<!\w)(?<!\+)\+44[ -]?(?:\(0\)[ -]?)?[1-37-9](?:[ -]?\d){9}(?![\d-])"
    r"|(?<![\d-])(?<!\+)07\d{3}[ -]?\d{3}[ -]?\d{3}(?![\d-])"
)
# A street address: a house number and one to four capitalised words before a street type
# (US/UK), optionally a unit, a city, and a state and ZIP code or a UK postcode; a street
# type, up to four words and a number (Spanish, Portuguese, Italian, French "rue ..."), or a
# German "...straße 12".
# Capitals are required for the US form so that "3 easy ways" is no address, and for the
# street types that are common words ("via", "corso", "plaza"). Every repetition is bounded:
# linear in the text.
_STREET_TYPE = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl"
    r"|Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Crescent|Close|Grove|Gardens"
    r"|Mews)"
)
_ADDRESS = re.compile(
    rf"\b\d{{1,6}}[A-Za-z]?\s{{1,3}}(?:[A-Z][A-Za-z'-]{{0,20}}\s{{1,3}}){{1,4}}{_STREET_TYPE}\b\.?"
    r"(?:,?\s{1,3}(?:Apt|Apartment|Suite|Ste|Unit|#)\.?\s{0,3}[\w-]{1,6})?"
    r"(?:,\s{0,3}[A-Z][A-Za-z'-]{1,20}(?:\s{1,3}[A-Z][A-Za-z'-]{1,20}){0,2},?\s{1,3}"
    r"(?:[A-Z]{1,2}\d[A-Z\d]?\s{0,2}\d[A-Z]{2}\b|[A-Z]{2}(?:\s{1,3}\d{5}(?:-\d{4})?)?))?"
    r"|\b(?:(?i:calle|avenida|avda\.?|paseo|rua|travessa|rue|boulevard|chemin|allée)"
    r"|Via|Viale|Piazza|Corso|Plaza|Avenue)\s{1,3}(?:[\w'\u2019.-]{1,20}\s{1,3}){0,4}?\d{1,4}[A-Za-z]?\b"
    r"(?:,\s{0,3}\d{1,2}\s{0,3}[ºª°]\s{0,3}[A-Za-z]?)?(?:,\s{0,3}\d{5}\s{1,3}[A-Z][\w-]{1,20})?"
    r"|\b\d{1,4},?\s{1,3}(?i:rue|avenue|boulevard|place|chemin|allée)\s{1,3}"
    r"(?:[\w'\u2019-]{1,20}\s{1,3}){0,3}[\w'\u2019-]{1,20}"
    r"|\b[A-ZÄÖÜ][\wäöüß-]{1,30}(?:straße|strasse|str\.|weg|gasse|platz|allee)\s{1,3}\d{1,4}[a-z]?\b"
)


# IBAN lengths of the supported languages' countries and their neighbours (ISO 13616 registry).
IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "CH": 21, "DE": 22, "DK": 18, "ES": 24, "FI": 18, "FR": 27, "GB": 22,
    "IE": 22, "IT": 27, "LU": 20, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "SE": 24, "BR": 29,
}  # fmt: skip


def iban_checksum_valid(compact: str) -> bool:
    """ISO 13616: moved and converted to digits, the IBAN is 1 modulo 97."""
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def iban_valid(candidate: str) -> bool:
    """An IBAN of a listed country with that country's length, or any that passes mod 97. A
    mistyped or made-up IBAN of the right shape is still redacted: it is what a person meant
    to be their account number."""
    compact = candidate.replace(" ", "").upper()
    if IBAN_LENGTHS.get(compact[:2]) == len(compact):
        return True
    return 15 <= len(compact) <= 34 and iban_checksum_valid(compact)


def ssn_valid(candidate: str) -> bool:
    area, group, serial = candidate.split("-")
    return area not in {"000", "666"} and area[0] != "9" and group != "00" and serial != "0000"


def dni_valid(candidate: str) -> bool:
    """Spanish DNI, or NIE with its leading X/Y/Z read as 0/1/2: the letter is the number
    modulo 23 in this table."""
    compact = candidate.replace("-", "").upper()
    number = str("XYZ".index(compact[0])) + compact[1:-1] if compact[0] in "XYZ" else compact[:-1]
    return "TRWAGMYFPDXBNJZSQVHLCKE"[int(number) % 23] == compact[-1]


_CF_ODD = [
    1,
    0,
    5,
    7,
    9,
    13,
    15,
    17,
    19,
    21,
    2,
    4,
    18,
    20,
    11,
    3,
    6,
    8,
    12,
    14,
    16,
    10,
    22,
    25,
    24,
    23,
]


def codice_fiscale_valid(candidate: str) -> bool:
    """Italian codice fiscale: the last letter checks the first fifteen characters."""
    total = 0
    for index, ch in enumerate(candidate[:15]):
        value = int(ch) if ch.isdigit() else ord(ch) - ord("A")
        total += _CF_ODD[value] if index % 2 == 0 else value
    return chr(ord("A") + total % 26) == candidate[15]


def cpf_valid(candidate: str) -> bool:
    """Brazilian CPF: two check digits, each a weighted sum modulo 11."""
    digits = [int(ch) for ch in candidate if ch.isdigit()]
    if len(set(digits)) == 1:
        return False
    for size in (9, 10):
        total = sum(d * w for d, w in zip(digits[:size], range(size + 1, 1, -1), strict=True))
        if (total * 10 % 11) % 10 != digits[size]:
            return False
    return True


def nir_valid(candidate: str) -> bool:
    """French NIR: the last two digits are 97 minus the first thirteen modulo 97 (Corsica's
    2A and 2B read as 19 and 18)."""
    compact = candidate.replace(" ", "").upper()
    body = compact[:13].replace("2A", "19").replace("2B", "18")
    return len(compact) == 15 and 97 - int(body) % 97 == int(compact[13:])


def personnummer_valid(candidate: str) -> bool:
    """Swedish personnummer: Luhn over the ten digits YYMMDDNNNC."""
    digits = [int(ch) for ch in candidate if ch.isdigit()][-10:]
    return len(digits) == 10 and luhn_sum_valid(digits)


def bsn_valid(candidate: str) -> bool:
    """Dutch BSN: the 11-proof, weights 9 down to 2 and -1 on the last digit."""
    digits = [int(ch) for ch in candidate if ch.isdigit()]
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return len(digits) == 9 and sum(d * w for d, w in zip(digits, weights, strict=True)) % 11 == 0


def steuer_id_valid(candidate: str) -> bool:
    """German tax ID: the last digit checks the first ten (ISO 7064 MOD 11,10)."""
    digits = [int(ch) for ch in candidate if ch.isdigit()]
    if len(digits) != 11:
        return False
    product = 10
    for digit in digits[:10]:
        total = (digit + product) % 10 or 10
        product = total * 2 % 11
    return (11 - product) % 10 == digits[10]


def tc_kimlik_valid(candidate: str) -> bool:
    """Turkish identity number: the tenth digit is 7 times the odd-placed of the first nine
    less the even-placed, modulo 10; the eleventh, the sum of the first ten modulo 10."""
    digits = [int(ch) for ch in candidate if ch.isdigit()]
    if len(digits) != 11 or digits[0] == 0:
        return False
    odd, even = sum(digits[0:9:2]), sum(digits[1:8:2])
    return (odd * 7 - even) % 10 == digits[9] and sum(digits[:10]) % 10 == digits[10]


def cnp_valid(candidate: str) -> bool:
    """Romanian CNP: the thirteenth digit is the first twelve weighted by 279146358279, modulo
    11 (10 counts as 1)."""
    digits = [int(ch) for ch in candidate if ch.isdigit()]
    if len(digits) != 13:
        return False
    total = sum(d * int(w) for d, w in zip(digits, "279146358279", strict=False)) % 11
    return (1 if total == 10 else total) == digits[12]


def pesel_valid(candidate: str) -> bool:
    """Polish PESEL: the eleventh digit completes the first ten, weighted 1, 3, 7, 9, to a
    multiple of 10."""
    digits = [int(ch) for ch in candidate if ch.isdigit()]
    if len(digits) != 11:
        return False
    total = sum(d * w for d, w in zip(digits, (1, 3, 7, 9, 1, 3, 7, 9, 1, 3), strict=False))
    return (10 - total % 10) % 10 == digits[10]


def _any(candidate: str) -> bool:
    return True


# (pattern, validity check, label) for the identifiers found by pattern and checksum.
_IDENTIFIERS = (
    (_IBAN, iban_valid, "[iban]"),
    (_SSN, ssn_valid, "[id]"),
    (_DNI, dni_valid, "[id]"),
    # These two shapes are distinctive enough on their own; a wrong check character is a typo.
    (_CODICE_FISCALE, _any, "[id]"),
    (_CPF, _any, "[id]"),
    (_NIR, nir_valid, "[id]"),
    (_PERSONNUMMER, personnummer_valid, "[id]"),
    (_UK_NINO, _any, "[id]"),
)
# Numbers after their keyword (group 1 is the number), and their check: the shape alone for the
# NIR and the personnummer; the 11-proof for the BSN, nine digits being any number's shape.
_KEYWORD_IDENTIFIERS = (
    (_NIR_KEYWORD, _any),
    (_PERSONNUMMER_KEYWORD, _any),
    (_BSN_KEYWORD, bsn_valid),
    (_STEUER_ID_KEYWORD, steuer_id_valid),
    (_TC_KIMLIK_KEYWORD, tc_kimlik_valid),
    (_CNP_KEYWORD, cnp_valid),
    (_PESEL_KEYWORD, pesel_valid),
    (_SIN_KEYWORD, _any),
    (_AUSWEIS_KEYWORD, _any),
)
# Phone numbers written without their country code are valid only in their own country's plan:
# besides the configured region (MODERATION_PHONE_REGION), those of the message's language
# when it is known ("mi móvil 612 48 93 07" is a Spanish mobile, not a US number). Only in
# messages up to `REGIONAL_PHONE_CHARS` long: each region is one more pass of phonenumbers'
# slow matcher (0.3-0.7 s over 32,000 characters of digits).
LANGUAGE_PHONE_REGIONS = {
    "es": ("ES",),
    "fr": ("FR",),
    "de": ("DE", "AT", "CH"),
    "it": ("IT",),
    "pt": ("PT", "BR"),
    "nl": ("NL", "BE"),
    "pl": ("PL",),
    "sv": ("SE",),
    "ro": ("RO",),
    "tr": ("TR",),
}
REGIONAL_PHONE_CHARS = 2_000
PHONE_LANGUAGE_PROBABILITY = 0.5


def luhn_valid(number: str) -> bool:
    digits = [int(ch) for ch in number if ch.isdigit()]
    return 13 <= len(digits) <= 19 and luhn_sum_valid(digits)


def luhn_sum_valid(digits: list[int]) -> bool:
    """Luhn: every second digit from the right doubled (less 9 past 9), the sum a multiple
    of 10."""
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


class PiiCheck(Check):
    """Finds e-mail addresses, valid phone numbers, Luhn-valid card numbers, IBANs and
    national identity numbers; asks for their redaction. Runs on code blocks too: a secret
    pasted in a code block is still personal data."""

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
        for pattern, valid, label in _IDENTIFIERS:
            spans += [
                Span(m.start(), m.end(), label) for m in pattern.finditer(text) if valid(m.group(0))
            ]
        for keyword, valid in _KEYWORD_IDENTIFIERS:
            spans += [
                Span(m.start(1), m.end(1), "[id]")
                for m in keyword.finditer(text)
                if valid(m.group(1))
            ]
        for word in _PASSPORT.finditer(text):
            window = text[word.end() : word.end() + PASSPORT_WINDOW].split("\n", 1)[0]
            spans += [
                Span(word.end() + m.start(), word.end() + m.end(), "[id]")
                for m in _PASSPORT_ID.finditer(window)
            ]
        spans += [Span(m.start(), m.end(), "[address]") for m in _ADDRESS.finditer(text)]
        taken = [*cards, *(s for s in spans if s.label in {"[iban]", "[id]", "[address]"})]
        uk_phones = [
            Span(m.start(), m.end(), "[phone]")
            for m in _UK_PHONE.finditer(text)
            if not any(c.start <= m.start() < c.end for c in taken)
        ]
        spans += uk_phones
        taken += uk_phones
        if _DIGITS.search(text):
            for region in self.phone_regions(text):
                for match in phonenumbers.PhoneNumberMatcher(
                    text, region, leniency=phonenumbers.Leniency.VALID
                ):
                    # A number another plan already read is taken too.
                    if not any(c.start <= match.start < c.end for c in taken):
                        phone = Span(match.start, match.end, "[phone]")
                        spans.append(phone)
                        taken.append(phone)
        return spans

    def phone_regions(self, text: str) -> list[str]:
        """The numbering plans phone numbers in `text` are read in: the configured region,
        then those of the text's language (`LANGUAGE_PHONE_REGIONS`) in a short message."""
        regions = [self.region]
        if len(text) <= REGIONAL_PHONE_CHARS:
            from moderation.language import detect

            # A likely language is enough: a wrong guess only reads a number in one more plan.
            language = detect(text, min_probability=PHONE_LANGUAGE_PROBABILITY).language
            regions += LANGUAGE_PHONE_REGIONS.get(language, ())
        return list(dict.fromkeys(regions))
