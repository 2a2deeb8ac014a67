"""The values every part of moderation passes around: directions, actions and verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Direction(StrEnum):
    INPUT = "input"
    OUTPUT = "output"


class Action(StrEnum):
    """What to do with a text. Declared from mildest to strictest: the pipeline keeps the
    strictest action any check asked for."""

    ALLOW = "allow"
    FLAG = "flag"
    REDACT = "redact"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Action.ALLOW: 0, Action.FLAG: 1, Action.REDACT: 2, Action.BLOCK: 3}


class FailurePolicy(StrEnum):
    """What a check's error turns into: `open` lets the text through, `closed` blocks it."""

    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of the checked text to replace with `label` (e.g. "[email]") when redacting.
    Offsets index the text the check was given, which always has the caller's length."""

    start: int
    end: int
    label: str


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    categories: tuple[str, ...] = ()
    score: float = 0.0
    reason: str = ""
    # The words or pattern that matched: shown to reviewers, and the default phrase for a
    # "make allowlist entry" from a false positive.
    matched: str = ""
    spans: tuple[Span, ...] = ()
    check: str = ""

    @classmethod
    def allow(cls) -> Verdict:
        return ALLOW


ALLOW = Verdict(Action.ALLOW)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The pipeline's combined answer for one text."""

    action: Action
    categories: tuple[str, ...]
    verdicts: tuple[Verdict, ...] = ()
    # The text with every redaction applied (equal to the input when nothing was redacted).
    text: str = ""
    spans: tuple[Span, ...] = field(default=())

    @property
    def blocked(self) -> bool:
        return self.action is Action.BLOCK


def redact(text: str, spans: tuple[Span, ...] | list[Span]) -> str:
    """Replace each span with its label; overlapping spans merge into the first label."""
    if not spans:
        return text
    pieces: list[str] = []
    cursor = 0
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if span.end <= cursor:
            continue
        start = max(span.start, cursor)
        pieces.append(text[cursor:start])
        if start == span.start:
            pieces.append(span.label)
        cursor = span.end
    pieces.append(text[cursor:])
    return "".join(pieces)
