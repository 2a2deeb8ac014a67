"""Writes, and the two calls the rest of the platform makes: `moderate_input` (the chat
consumer, before anything is stored) and `moderation.streaming.OutputModerator` (the worker)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config import metrics
from moderation import context, pipeline, state
from moderation.messages import REDACTED_INPUT_MESSAGE, blocked_message
from moderation.models import AllowlistEntry, ModerationEvent, ModerationRule
from moderation.types import Action, Direction, Outcome, Verdict, redact

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputDecision:
    """What to do with one user message.

    `action`: "allow", "flag" (send it, it is recorded for review), "redact" (send `text`,
    which has personal data replaced) or "block" (send nothing; show `message`).
    `text`: what to store and send. `message`: user-safe explanation ("" when allowed or
    flagged); for self-harm, the supportive reply with resources.
    """

    action: str
    text: str
    categories: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def blocked(self) -> bool:
        return self.action == Action.BLOCK


def moderate_input(
    text: str,
    *,
    user_id: int | None,
    conversation_id: str | None = None,
    request_id: str | None = None,
) -> InputDecision:
    """Moderate a user message before it is stored or queued. Synchronous (call it through
    `sync_to_async` from a consumer); records a `ModerationEvent` per non-allow verdict.

    Within `MODERATION_INPUT_BUDGET_MS`: when it is spent before every check has run, the
    message is blocked with category "unchecked" and recorded under check name "time_budget"
    for review; the next message is checked afresh."""
    outcome = pipeline.run(
        text, direction=Direction.INPUT, budget_ms=settings.MODERATION_INPUT_BUDGET_MS
    )
    turns = context.recent_turns(user_id=user_id, conversation_id=conversation_id)
    if turns and outcome.action is not Action.BLOCK:
        # The message after the conversation's last turns, by the checks that read meaning:
        # a request split across messages is blocked at the message that completes it.
        joined = pipeline.run(
            context.in_context(turns, outcome.text),
            direction=Direction.INPUT,
            budget_ms=settings.MODERATION_INPUT_BUDGET_MS,
            only=CONTEXT_CHECKS,
        )
        if joined.action is Action.BLOCK:
            outcome = _blocked_in_context(outcome, joined, len(turns))
    if outcome.action is not Action.BLOCK:
        context.turn_record(
            user_id=user_id, conversation_id=conversation_id, text=outcome.text, earlier=turns
        )
    if outcome.action is Action.ALLOW:
        metrics.moderation_decided(stage="input", categories=[], action="allow")
        return InputDecision(action=Action.ALLOW.value, text=text)
    events_record(
        verdicts=outcome.verdicts,
        direction=Direction.INPUT,
        # Reviewers see the message with personal data already replaced.
        text=redact(text, outcome.spans),
        user_id=user_id,
        conversation_id=conversation_id,
        request_id=request_id,
    )
    categories = list(outcome.categories)
    if outcome.action is Action.BLOCK:
        message = blocked_message(categories, direction=Direction.INPUT)
        return InputDecision(Action.BLOCK.value, text, categories, message)
    if outcome.action is Action.REDACT:
        return InputDecision(Action.REDACT.value, outcome.text, categories, REDACTED_INPUT_MESSAGE)
    return InputDecision(Action.FLAG.value, text, categories, "")


# The checks that judge a message together with the turns before it.
CONTEXT_CHECKS = frozenset({"patterns", "semantic"})


def _blocked_in_context(alone: Outcome, joined: Outcome, turns: int) -> Outcome:
    """The message's own outcome, blocked by what the turns before it make of it (the
    verdicts say so, for reviewers; the message's own redactions still apply)."""
    found = tuple(
        dataclasses.replace(v, reason=f"{v.reason} (with the {turns} turn(s) before)"[:500])
        for v in joined.verdicts
    )
    return dataclasses.replace(
        alone, action=Action.BLOCK, categories=joined.categories, verdicts=alone.verdicts + found
    )


def rules_version() -> int:
    """The version of admin rules this process runs with (changes on every admin edit)."""
    return state.snapshot().version


def events_record(
    *,
    verdicts: Iterable[Verdict],
    direction: Direction,
    text: str,
    user_id: int | None,
    conversation_id: str | None = None,
    generation_id: str | None = None,
    request_id: str | None = None,
) -> list[ModerationEvent]:
    """One event per non-allow verdict. A failure to record is logged, never raised: the
    verdict itself must still be enforced."""
    limit = settings.MODERATION_EVENT_CONTEXT_CHARS
    context = text if len(text) <= limit else text[:limit] + "…"
    events = [
        ModerationEvent(
            direction=direction.value,
            user_id=user_id,
            conversation_id=conversation_id or "",
            generation_id=generation_id or "",
            request_id=(request_id or "")[:128],
            text=context,
            matched=v.matched[:500],
            categories=list(v.categories),
            action=v.action.value,
            check_name=v.check,
            score=v.score,
            reason=v.reason[:500],
        )
        for v in verdicts
        if v.action is not Action.ALLOW
    ]
    for event in events:
        metrics.moderation_decided(
            stage=event.direction, categories=event.categories, action=event.action
        )
    if not events:
        return []
    try:
        with transaction.atomic():
            return ModerationEvent.objects.bulk_create(events)
    except Exception:
        logger.exception("moderation: could not record %d event(s)", len(events))
        return []


def event_review(*, event_id: int, status: str, reviewer_id: int | None) -> ModerationEvent:
    """Mark an event "confirmed" or "false_positive" (or back to "pending")."""
    if status not in ModerationEvent.ReviewStatus.values:
        raise ValueError(f"unknown review status {status!r}")
    event = ModerationEvent.objects.get(pk=event_id)
    event.review_status = status
    event.reviewed_by_id = reviewer_id
    event.reviewed_at = timezone.now()
    event.save(update_fields=["review_status", "reviewed_by", "reviewed_at"])
    return event


def allowlist_entry_from_event(*, event_id: int, reviewer_id: int | None) -> AllowlistEntry:
    """The one-step fix for a false positive: allowlist what matched (or the whole text when
    the check reported no words) and mark the event a false positive."""
    with transaction.atomic():
        event = ModerationEvent.objects.select_for_update().get(pk=event_id)
        phrase = (event.matched.split(" | ")[0] or event.text).strip()[:500]
        entry = allowlist_entry_create(
            phrase=phrase,
            note=f"from moderation event #{event.pk} ({event.check_name})",
            created_by_id=reviewer_id,
            source_event_id=event.pk,
        )
        event_review(event_id=event.pk, status="false_positive", reviewer_id=reviewer_id)
    return entry


def allowlist_entry_create(
    *,
    phrase: str,
    note: str = "",
    created_by_id: int | None = None,
    source_event_id: int | None = None,
) -> AllowlistEntry:
    entry = AllowlistEntry(
        phrase=phrase, note=note, created_by_id=created_by_id, source_event_id=source_event_id
    )
    entry.full_clean()
    entry.save()
    return entry


def rule_create(
    *,
    pattern: str,
    categories: list[str],
    action: str = "block",
    kind: str = "word",
    direction: str = "both",
    enabled: bool = True,
    note: str = "",
    created_by_id: int | None = None,
) -> ModerationRule:
    """Create an admin rule; raises django's ValidationError (nothing saved) on bad input,
    e.g. a regex RE2 cannot run. Takes effect everywhere within MODERATION_RULES_REFRESH_SECONDS."""
    rule = ModerationRule(
        pattern=pattern,
        categories=categories,
        action=action,
        kind=kind,
        direction=direction,
        enabled=enabled,
        note=note,
        created_by_id=created_by_id,
    )
    rule.full_clean()
    rule.save()
    return rule


def rule_update(*, rule_id: int, **changes: Any) -> ModerationRule:
    rule = ModerationRule.objects.get(pk=rule_id)
    for name, value in changes.items():
        if name not in {"pattern", "categories", "action", "kind", "direction", "enabled", "note"}:
            raise ValueError(f"cannot change {name!r}")
        setattr(rule, name, value)
    rule.full_clean()
    rule.save()
    return rule
