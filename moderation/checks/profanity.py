"""Swear words and sexual terms from glin-profanity's word list (leetspeak, masks and
separators included). Casual swearing is not abuse, so the default action is `flag`;
`MODERATION_PROFANITY_ACTION=block` makes it a block.

Bounded work: the library's cost is not linear in its input. Its measurement test
(`\\d+[A-Za-z]`) backtracks over every start of a digit run, and it joins spaced single
characters ("1 1 1 ...") into one run first: 16,000 digits took 16 s. So the library is only
ever handed `library_pieces`: runs of word characters (or of symbols) cut to `MAX_RUN_CHARS`,
no dictionary entry being half as long, and texts longer than `PIECE_CHARS` in overlapping
pieces cut at spaces, so its cost per piece has a fixed ceiling and the number of pieces grows
linearly. Normal messages are one piece, as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar

from django.conf import settings
from glin_profanity import Filter

from moderation.checks import Check
from moderation.normalize import normalize
from moderation.types import ALLOW, Action, Direction, Verdict

# The longest entry of the English list has 27 characters; a run of 64 is no word of it.
MAX_RUN_CHARS = 64
PIECE_CHARS = 512
# Consecutive pieces share this much text, so an entry (or a safe phrase around one) that
# straddles a cut is whole in one of them.
OVERLAP_CHARS = 64
# A run of word characters, or of other non-space characters, too long to be a word. The
# look-behinds make each run be tried once, from its start: linear.
_LONG_RUN = re.compile(
    rf"(?<!\w)\w{{{MAX_RUN_CHARS + 1},}}|(?<![^\w\s])[^\w\s]{{{MAX_RUN_CHARS + 1},}}"
)


def _cut_run(match: re.Match[str]) -> str:
    run = match.group(0)
    return " ".join(run[i : i + MAX_RUN_CHARS] for i in range(0, len(run), MAX_RUN_CHARS))


def library_pieces(normalized: str) -> Iterator[str]:
    """What the library is given for `normalized`: pieces of at most `PIECE_CHARS`
    characters with no run longer than `MAX_RUN_CHARS`, consecutive ones overlapping by
    `OVERLAP_CHARS`; `normalized` itself when it is short and has no long run."""
    text = _LONG_RUN.sub(_cut_run, normalized)
    start = 0
    while len(text) - start > PIECE_CHARS:
        end = start + PIECE_CHARS
        # At a space in the second half; hard only in a long mix of letters and symbols.
        cut = text.rfind(" ", start + PIECE_CHARS // 2, end)
        cut = cut if cut != -1 else end
        yield text[start:cut]
        # The next piece starts after a space at least OVERLAP_CHARS before the cut (and at
        # least PIECE_CHARS // 4 after this piece's start, so the pieces stay few).
        back = text.rfind(" ", cut - OVERLAP_CHARS - MAX_RUN_CHARS, cut - OVERLAP_CHARS + 1)
        start = back + 1 if back != -1 else cut - OVERLAP_CHARS
    yield text[start:]


class ProfanityCheck(Check):
    name: ClassVar[str] = "profanity"

    def __init__(self, *, threshold: float | None = None) -> None:
        super().__init__(threshold=threshold)
        self.action = Action(settings.MODERATION_PROFANITY_ACTION)
        self._filter = Filter(
            {"languages": ["english"], "detect_leetspeak": True, "obfuscation": "standard"}
        )

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        normalized = normalize(text)
        if not normalized:
            return ALLOW
        found: dict[str, None] = {}
        for piece in library_pieces(normalized):
            result = self._filter.check_profanity(piece)
            if result.get("contains_profanity"):
                found.update(dict.fromkeys(result.get("profane_words") or [""]))
        if not found:
            return ALLOW
        words = sorted(w for w in found if w)
        return Verdict(
            self.action,
            categories=("profanity",),
            score=1.0,
            reason="profanity: " + ", ".join(words),
            matched=words[0] if words else "",
        )
