"""Swear words and sexual terms from glin-profanity's word list (leetspeak, masks and
separators included). Casual swearing is not abuse, so the default action is `flag`;
`MODERATION_PROFANITY_ACTION=block` makes it a block."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from glin_profanity import Filter

from moderation.checks import Check
from moderation.normalize import normalize
from moderation.types import ALLOW, Action, Direction, Verdict


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
        result = self._filter.check_profanity(normalized)
        if not result.get("contains_profanity"):
            return ALLOW
        words = sorted(set(result.get("profane_words") or []))
        return Verdict(
            self.action,
            categories=("profanity",),
            score=1.0,
            reason="profanity: " + ", ".join(words),
            matched=words[0] if words else "",
        )
