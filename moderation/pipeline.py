"""Runs the enabled checks on one text and combines their verdicts.

Order of work: allowlisted phrases are blanked (they win over every check), fenced code and
reported quotes (moderation/reported.py) are blanked for checks that skip code, each check runs
under its failure policy, a self-harm block of someone asking for help becomes a flag
(moderation/support.py), so does a pattern or semantic block of a text with a protective intent
and no operational ask (moderation/intent.py), and the strictest action wins. The first block
stops the run: later (often slower) checks cannot change it.

A run may have a time budget (`budget_ms`; input: MODERATION_INPUT_BUDGET_MS). Checks run one
after another and are not interrupted, so the budget is looked at before each check: once it
is spent and a check has not run yet, the text is blocked with category "unchecked" (fail
closed for this text only; the next text starts with a fresh budget).
"""

from __future__ import annotations

import dataclasses
import logging
import time

from django.conf import settings

from moderation import intent, policy, registry, state, support
from moderation.code_prose import mask_code_keeping_comments
from moderation.messages import UNAVAILABLE_CATEGORY, UNCHECKED_CATEGORY
from moderation.normalize import mask_code_fences
from moderation.reported import mask_reported
from moderation.types import Action, Direction, FailurePolicy, Outcome, Span, Verdict, redact

logger = logging.getLogger(__name__)

# The name a time-budget refusal is recorded under (ModerationEvent.check_name), so reviewers
# can find them apart from the checks' own verdicts.
BUDGET_CHECK_NAME = "time_budget"
# What the budget is measured with; tests replace it with a fake clock.
clock = time.monotonic


def mask_allowlisted(text: str, snapshot: state.Snapshot) -> str:
    """`text` with allowlisted phrases replaced by spaces (same length, so offsets hold)."""
    if snapshot.allowlist is None:
        return text
    return snapshot.allowlist.mask(text)


def run(
    text: str,
    *,
    direction: Direction,
    code_open_at_start: bool = False,
    snapshot: state.Snapshot | None = None,
    budget_ms: int | None = None,
    only: frozenset[str] | None = None,
) -> Outcome:
    """Moderate `text`. `code_open_at_start` says the text begins inside a fenced code block
    (a streamed window); it only matters to checks that skip code. `snapshot` replaces the
    admin state (the evaluation script runs without a database). `budget_ms` (None or 0: no
    budget) is the time the checks may take, counted once the admin state and checks are loaded:
    past it, a check that has not run yet blocks the text as "unchecked" instead of running.
    `only` limits the run to the configured checks of those names (the context check)."""
    if snapshot is None:
        try:
            snapshot = state.snapshot()
        except state.StateUnavailable:
            # Nothing could ever be loaded: run the built-in checks without allowlist or
            # overrides; the rules check reports the outage under its own failure policy.
            logger.warning("moderation: running without admin rules (stores unreachable)")
            snapshot = state.EMPTY
    # Counted after the checks are loaded: loading (seconds, once per process) is not the
    # text's cost, and `warm()` does it before a server takes traffic.
    checks = registry.configured_checks(snapshot)
    if only is not None:
        checks = [c for c in checks if c.name in only]
    started = clock()
    masked = mask_allowlisted(text, snapshot)
    # The text each kind of code-skipping check reads, by whether it reads code comments.
    prose: dict[bool, str] = {}
    # Personal data found so far (a redaction's spans): replaced by its label for the checks
    # that read prose, so that a phone or card number is not judged as what it is about.
    redacted: list[Span] = []
    verdicts: list[Verdict] = []
    for index, configured in enumerate(checks):
        if budget_ms:
            elapsed_ms = (clock() - started) * 1000
            if elapsed_ms > budget_ms:
                verdicts.append(
                    _over_budget(checks, index, budget_ms, elapsed_ms, direction, len(text))
                )
                break
        check = configured.check
        if check.skips_code:
            comments = check.reads_code_comments
            if comments not in prose:
                # Words quoted as reported or mentioned ("he called me '...'") are not the
                # writer's own (moderation/reported.py).
                mask = mask_code_keeping_comments if comments else mask_code_fences
                prose[comments] = mask_reported(
                    mask(labelled_spans(masked, redacted), starts_inside=code_open_at_start)
                )
            checked = prose[comments]
        else:
            checked = masked
        try:
            verdict = check.evaluate(checked, direction=direction)
        except Exception as exc:
            verdict = _failure_verdict(configured, exc, verdicts)
        # The operator's action per category (a block may become a flag or nothing), before
        # the first block stops the run.
        verdict = policy.apply(verdict, snapshot.category_actions)
        # Someone asking for help with their own self-harm is answered, not refused.
        verdict = support.soften(verdict, checked)
        # Harmful words in a protective intent, with no operational ask, are flagged. Input
        # only: an answer holds no ask, so its instructions would pass under a cue.
        if (
            direction is Direction.INPUT
            and check.lowered_by_intent
            and settings.MODERATION_PROTECTIVE_INTENT
        ):
            verdict = intent.lower(verdict, checked)
        if verdict.action is Action.ALLOW:
            continue
        verdicts.append(dataclasses.replace(verdict, check=configured.name))
        if verdict.action is Action.BLOCK:
            break
        if verdict.spans:
            redacted += verdict.spans
            prose = {}
    return combine(text, verdicts)


def labelled_spans(text: str, spans: list[Span]) -> str:
    """`text` with each span replaced by its label's word ("[phone]" -> "phone"). The length
    changes: only checks that read prose see this text, and they report no spans."""
    if not spans:
        return text
    return redact(text, [Span(s.start, s.end, f" {s.label.strip('[]')} ") for s in spans])


def warm() -> None:
    """Load every configured check now (the embedding model, word lists, classifiers) rather
    than on the first message: loading them takes seconds of the interpreter's lock, and a web
    process doing that while it serves stalls every connection it holds."""
    for direction in Direction:
        run("Hello! What is a good name for a cat?", direction=direction, snapshot=state.EMPTY)


def _over_budget(
    checks: list[registry.ConfiguredCheck],
    ran: int,
    budget_ms: int,
    elapsed_ms: float,
    direction: Direction,
    chars: int,
) -> Verdict:
    """The block for a text whose checks did not all run within the budget."""
    skipped = ", ".join(c.name for c in checks[ran:])
    reason = (
        f"time budget {budget_ms} ms spent after {ran} of {len(checks)} checks "
        f"({elapsed_ms:.0f} ms); not run: {skipped}"
    )
    logger.warning(
        "moderation: %s text of %d chars refused unchecked: %s", direction, chars, reason
    )
    return Verdict(
        Action.BLOCK,
        categories=(UNCHECKED_CATEGORY,),
        reason=reason[:500],
        check=BUDGET_CHECK_NAME,
    )


def _failure_verdict(
    configured: registry.ConfiguredCheck, exc: Exception, earlier: list[Verdict]
) -> Verdict:
    """What a failed check means: its failure policy, or a block when an `earlier` verdict
    flagged the text in a category of `MODERATION_FAIL_CLOSED_CATEGORIES`."""
    policy = getattr(exc, "policy", None) or configured.policy
    if policy is FailurePolicy.CLOSED:
        logger.error("moderation: check %s failed, failing closed: %s", configured.name, exc)
        return Verdict(
            Action.BLOCK,
            categories=(UNAVAILABLE_CATEGORY,),
            reason=f"check failed (fail closed): {exc}"[:500],
        )
    suspected = _fail_closed_categories(earlier)
    if suspected:
        logger.error(
            "moderation: check %s failed on a text flagged %s, failing closed: %s",
            configured.name,
            ",".join(suspected),
            exc,
        )
        return Verdict(
            Action.BLOCK,
            categories=suspected,
            reason=f"check failed on a text flagged {','.join(suspected)} (fail closed): {exc}"[
                :500
            ],
        )
    logger.warning("moderation: check %s failed, failing open: %s", configured.name, exc)
    return Verdict(Action.ALLOW)


def _fail_closed_categories(earlier: list[Verdict]) -> tuple[str, ...]:
    """The categories earlier checks flagged that `MODERATION_FAIL_CLOSED_CATEGORIES` names,
    itself or as a parent ("self-harm" names "self-harm/instructions")."""
    configured = set(settings.MODERATION_FAIL_CLOSED_CATEGORIES)
    if not configured:
        return ()
    flagged = (c for v in earlier if v.action is Action.FLAG for c in v.categories)
    return tuple(
        dict.fromkeys(c for c in flagged if c in configured or c.split("/")[0] in configured)
    )


def combine(text: str, verdicts: list[Verdict]) -> Outcome:
    if not verdicts:
        return Outcome(Action.ALLOW, (), (), text)
    action = max((v.action for v in verdicts), key=lambda a: a.severity)
    categories = tuple(
        dict.fromkeys(c for v in verdicts if v.action is action for c in v.categories)
    )
    spans: tuple[Span, ...] = tuple(s for v in verdicts for s in v.spans)
    redacted = redact(text, spans) if spans and action is not Action.BLOCK else text
    return Outcome(action, categories, tuple(verdicts), redacted, spans)
