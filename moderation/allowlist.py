"""Allowlisted phrases, each compiled on its own.

One alternation of every phrase would pass the admin pattern limit once the list grows, and
then no rules could be loaded at all. Here a phrase is the unit: each is validated when it is
saved (`validate_phrase`), compiled alone when loaded, and one that cannot be compiled (written
around the admin, or from before a limit changed) is left out and logged. Leaving a phrase out
is the safe side: the text it would have exempted is checked like any other.

An RE2 set finds which phrases occur in one pass over the text, so the cost per text stays one
scan however long the list is; only the phrases found are then located.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import re2

from moderation.regexes import PatternError, compile_pattern, set_options, word_pattern

logger = logging.getLogger(__name__)


def validate_phrase(phrase: str) -> None:
    """Raises `PatternError` when `phrase` cannot be an allowlist entry on its own."""
    compile_pattern(word_pattern(phrase))


@dataclass(frozen=True)
class Allowlist:
    phrases: tuple[str, ...]
    patterns: tuple[re2._Regexp, ...]
    # None when the set could not be built (its memory bound): every pattern is then tried.
    prefilter: re2.Set | None

    @classmethod
    def compile(cls, phrases: Iterable[str]) -> Allowlist | None:
        kept: list[str] = []
        patterns: list[re2._Regexp] = []
        for phrase in sorted(set(phrases)):
            try:
                patterns.append(compile_pattern(word_pattern(phrase)))
            except PatternError as exc:
                logger.error("moderation: allowlist phrase %r ignored: %s", phrase[:80], exc)
                continue
            kept.append(phrase)
        if not patterns:
            return None
        return cls(tuple(kept), tuple(patterns), _prefilter(patterns))

    def mask(self, text: str) -> str:
        """`text` with every allowlisted phrase replaced by spaces (same length, so offsets
        hold). Matches are found in the text as written, so phrases that overlap are all
        blanked, whatever their order."""
        if self.prefilter is None:
            candidates: Iterable[int] = range(len(self.patterns))
        else:
            candidates = self.prefilter.Match(text) or ()
        blank = [False] * len(text)
        found = False
        for index in candidates:
            for match in self.patterns[index].finditer(text):
                blank[match.start() : match.end()] = [True] * (match.end() - match.start())
                found = True
        if not found:
            return text
        return "".join(" " if hidden else char for char, hidden in zip(text, blank, strict=True))


def _prefilter(patterns: list[re2._Regexp]) -> re2.Set | None:
    found = re2.Set.SearchSet(set_options())
    try:
        for regex in patterns:
            found.Add(regex.pattern)
        found.Compile()
    except re2.error:
        logger.warning(
            "moderation: %d allowlist phrases do not fit one set; trying each in turn",
            len(patterns),
        )
        return None
    return found
