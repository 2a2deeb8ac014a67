"""Says what happens to a message in a language the checks were not written for.

The word lists, patterns and seed phrases cover `MODERATION_LANGUAGES` (English, Spanish,
French, German, Portuguese and Italian by default). A text confidently detected as another
language (`moderation.language`) gets `MODERATION_UNSUPPORTED_LANGUAGE_ACTION`:

- `check`: nothing more than the other checks, which may miss what it says;
- `flag` (default): sent, and recorded for review, category `unsupported_language`;
- `block`: refused, with a message saying the language cannot be checked yet.

Texts whose language is unknown (short, or mixed) count as supported.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings

from moderation import language
from moderation.checks import Check
from moderation.messages import UNSUPPORTED_LANGUAGE_CATEGORY
from moderation.types import ALLOW, Action, Direction, Verdict


class LanguageCheck(Check):
    name: ClassVar[str] = "language"

    def __init__(self, *, threshold: float | None = None) -> None:
        super().__init__(threshold=threshold)
        self.supported = frozenset(settings.MODERATION_LANGUAGES)
        self.action = settings.MODERATION_UNSUPPORTED_LANGUAGE_ACTION

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        if self.action == "check" or direction is not Direction.INPUT:
            return ALLOW
        detected = language.detect(text)
        if not detected.language or detected.language in self.supported:
            return ALLOW
        return Verdict(
            Action.BLOCK if self.action == "block" else Action.FLAG,
            categories=(UNSUPPORTED_LANGUAGE_CATEGORY,),
            score=detected.probability,
            reason=f"language {detected.language} ({detected.probability:.2f}) is not checked",
        )
