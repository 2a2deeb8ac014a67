"""The rules admins write (`ModerationRule`), loaded through `moderation.state`.

Words and regular expressions are matched case-insensitively against the text as written and
against its normalised form, so a rule for "badword" also catches "b@dw0rd" and "b a d w o r d".
Redacting rules replace what they match in the text as written.

An enabled rule that cannot be compiled is a configuration error, and the check fails closed
in that rule's direction, whatever its configured failure policy: running without the rule
would let through exactly what an admin wrote it to stop.
"""

from __future__ import annotations

from typing import ClassVar

from moderation.checks import Check, CheckError
from moderation.normalize import normalize
from moderation.state import CompiledRule, StateUnavailable, snapshot
from moderation.types import ALLOW, Action, Direction, FailurePolicy, Span, Verdict


class RulesCheck(Check):
    name: ClassVar[str] = "rules"
    # Admin rules are exact instructions: they apply inside code blocks too (the integration
    # test forces an output violation with a rule matching a word the model repeats).
    skips_code: ClassVar[bool] = False

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        try:
            loaded = snapshot()
        except StateUnavailable as exc:
            raise CheckError(f"rules unavailable: {exc}") from exc
        for broken in loaded.broken_rules:
            if broken.direction in ("both", direction.value):
                raise CheckError(
                    f"admin rule #{broken.id} cannot be compiled: {broken.error}",
                    policy=FailurePolicy.CLOSED,
                )
        rules = loaded.rules
        normalized: str | None = None
        best: Verdict = ALLOW
        spans: list[Span] = []
        for rule in rules:
            if rule.direction not in ("both", direction.value):
                continue
            regex = rule.regex
            if rule.action == Action.REDACT:
                found = [Span(m.start(), m.end(), "[redacted]") for m in regex.finditer(text)]
                if found:
                    spans += found
                    if best.action.severity < Action.REDACT.severity:
                        best = self._verdict(rule, Action.REDACT)
                continue
            hit = regex.search(text)
            if hit is None:
                if normalized is None:
                    normalized = normalize(text)
                hit = regex.search(normalized)
            if hit is None:
                continue
            action = Action(rule.action)
            if action.severity > best.action.severity:
                best = self._verdict(rule, action)
                if action is Action.BLOCK:
                    break
        if spans and best.action is Action.REDACT:
            return Verdict(
                best.action, best.categories, best.score, best.reason, best.matched, tuple(spans)
            )
        return best

    @staticmethod
    def _verdict(rule: CompiledRule, action: Action) -> Verdict:
        return Verdict(
            action,
            categories=tuple(rule.categories),
            score=1.0,
            reason=f"admin rule #{rule.id}",
            matched=rule.pattern[:500],
        )
