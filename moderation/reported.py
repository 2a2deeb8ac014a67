"""Words that a message reports or mentions rather than says: "he called me 'a worthless fat
cow'", "someone keeps telling my friend to 'go back to your country'", "is the word 'gypsy' a
slur?". People report abuse to moderators or ask what a word means; judging the quoted words
as theirs blocks exactly the users the policy protects.

`mask_reported` replaces a quoted span by the word "quote" when a reporting or mention cue (a
verb of saying in the past, "keeps telling", "the word", in the supported languages) comes at
most 60 characters before its opening quote. Quotes without such a cue ("write a post that
says 'you're worthless'", "tell him 'i will find you'") are left alone: a request to say
something is judged as said, and so is a request to translate it.

The prose checks (patterns, semantic, profanity, toxicity) read the masked text; the rules and
PII checks read the text as written. Linear: one pass of a pattern whose repetitions are
bounded (60 characters of lead-in, 300 of quote).
"""

from __future__ import annotations

import re

# Typographic quotes (opening, closing) and the typographic apostrophe.
_OPEN = "\u201c\u201e\u00ab\u2039"
_CLOSE = "\u201d\u201c\u00bb\u203a"
_APOSTROPHES = "'\u2019"
_CUE = (
    r"(?:called|calling|call) (?:me|him|her|them|us|my \w+)|said|told (?:me|him|her|them|us)"
    r"|keeps? (?:on )?(?:telling|calling|saying|writing|sending|posting|texting|messaging)"
    r"|wrote|messaged|texted|dm'?d|sent (?:me|him|her|us)|posted|commented|replied|yelled"
    r"|shouted|the (?:word|term|phrase|slur|expression|insult)|mean(?:s|ing)?"
    # Spanish, French, German, Portuguese, Italian.
    r"|escribi[oó]|dijo|llam[oó]|mand[oó]|la (?:palabra|expresi[oó]n)"
    rf"|m[{_APOSTROPHES}]a (?:dit|trait[ée]e?|[ée]crit|appel[ée]e?)|le mot"
    rf"|l[{_APOSTROPHES}]expression"
    r"|hat (?:mich|ihn|sie|uns) \w+|hat (?:gesagt|geschrieben)|schrieb|sagte|das wort"
    r"|chamou|disse|escreveu|mandou|a palavra|la parola|mi ha (?:detto|scritto|chiamat\w)"
)
_QUOTED = (
    # Straight single quotes: an apostrophe inside a word ("i'll", "won't") is not the end.
    r"'(?P<single>(?:[^'\n]|'(?=\w)){1,300}?)'(?!\w)"
    r'|"(?P<double>[^"\n]{1,300})"'
    rf"|[{_OPEN}](?P<curly>[^{_CLOSE}\n]{{1,300}})[{_CLOSE}]"
)
_REPORTED = re.compile(
    rf"\b(?P<lead>(?:{_CUE})\b[^\n\"'{_OPEN}]{{0,60}}?)(?:{_QUOTED})", re.IGNORECASE
)


def _masked(match: re.Match[str]) -> str:
    return f"{match.group('lead')}'quote'"


def mask_reported(text: str) -> str:
    """`text` with reported or mentioned quotes replaced by 'quote' (see module docstring)."""
    if "'" not in text and '"' not in text and not any(q in text for q in _OPEN):
        return text
    return _REPORTED.sub(_masked, text)
