"""Built-in patterns for what word lists and the toxicity model miss: hate, sexual content
involving minors, violent threats, self-harm, and instructions for weapons or drugs.

The patterns live in `moderation/data/patterns.json` (RE2, matched against normalised text).
They are a measured baseline (see bench/moderation_eval.py), not a complete classifier: admin
rules extend them, and the guard-model check covers what patterns cannot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import re2

from moderation.checks import Check
from moderation.normalize import normalize
from moderation.regexes import compile_pattern
from moderation.types import ALLOW, Action, Direction, Verdict

# Characters after a match that a group's exceptions also read (bounded: linear work).
EXCEPTION_LOOKAHEAD_CHARS = 24
PATTERNS_FILE = Path(__file__).resolve().parent.parent / "data" / "patterns.json"


@dataclass(frozen=True)
class PatternGroup:
    category: str
    action: Action
    regex: re2._Regexp
    exceptions: re2._Regexp | None


def load_terms(path: Path = PATTERNS_FILE) -> dict[str, str]:
    """The named pieces that patterns share (`<NAME>` in a pattern). `moderation.intent` reads
    some of them too, so that one list (another person's accounts, say) serves both."""
    terms: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))["terms"]
    return terms


def load_groups(path: Path = PATTERNS_FILE) -> list[PatternGroup]:
    document = json.loads(path.read_text(encoding="utf-8"))
    terms: dict[str, str] = document["terms"]

    def expand(pattern: str) -> str:
        for name, value in terms.items():
            pattern = pattern.replace(f"<{name}>", value)
        return pattern

    groups = []
    for group in document["groups"]:
        # One alternation per group: RE2 runs it in a single linear pass over the text.
        combined = "|".join(f"(?:{expand(p)})" for p in group["patterns"])
        excepts = group.get("except") or []
        groups.append(
            PatternGroup(
                category=group["category"],
                action=Action(group["action"]),
                regex=compile_pattern(combined, builtin=True),
                exceptions=compile_pattern("|".join(f"(?:{e})" for e in excepts), builtin=True)
                if excepts
                else None,
            )
        )
    return groups


class PatternCheck(Check):
    name: ClassVar[str] = "patterns"
    lowered_by_intent: ClassVar[bool] = True

    def __init__(self, *, threshold: float | None = None) -> None:
        super().__init__(threshold=threshold)
        self.groups = load_groups()

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        normalized = normalize(text)
        if not normalized:
            return ALLOW
        categories: list[str] = []
        matched: list[str] = []
        action = Action.ALLOW
        for group in self.groups:
            hit = self._first_match(group, normalized)
            if hit is None:
                continue
            categories.append(group.category)
            matched.append(hit)
            if group.action.severity > action.severity:
                action = group.action
        if not categories:
            return ALLOW
        return Verdict(
            action,
            categories=tuple(categories),
            score=1.0,
            reason="built-in patterns: " + ", ".join(categories),
            matched=" | ".join(matched)[:500],
        )

    @staticmethod
    def _first_match(group: PatternGroup, normalized: str) -> str | None:
        for match in group.regex.finditer(normalized):
            text = match.group(0)
            # An exception may read a few words past the match: "i'll shoot you an email" is
            # not a threat, and only what follows "shoot you" says so.
            after = normalized[match.end() : match.end() + EXCEPTION_LOOKAHEAD_CHARS]
            if group.exceptions is None or not group.exceptions.search(text + after):
                return text
        return None
