"""The check interface. Each check is one module with one class and one documented method.

To add a check: subclass `Check` in a new module under `moderation/checks/`, give it a unique
`name`, implement `evaluate`, and add its dotted path to `MODERATION_CHECKS` (or enable it from
the admin's "check settings"). See docs/moderation.md.
"""

from __future__ import annotations

from typing import ClassVar

from moderation.types import Direction, FailurePolicy, Verdict


class CheckError(Exception):
    """A check could not give an answer (a timeout, an unreachable service, a bad reply).

    `policy`, when given, overrides the check's configured failure policy for this error: e.g. a
    guard whose circuit is open may still want its configured policy, while a malformed reply
    the check knows to be harmless can say `FailurePolicy.OPEN`.
    """

    def __init__(self, message: str, *, policy: FailurePolicy | None = None) -> None:
        super().__init__(message)
        self.policy = policy


class Check:
    """Base class of every moderation check.

    Instances are created once per process by the registry and shared between threads, so
    `evaluate` must not keep per-call state on `self`.
    """

    #: Short unique name, used in settings, the admin and event records.
    name: ClassVar[str] = ""
    #: Whether the text given to this check has fenced code blocks blanked out. Word-list and
    #: toxicity checks skip code ("kill -9", "git push --force"); PII checks must not.
    skips_code: ClassVar[bool] = True
    #: With `skips_code`, whether the comments inside code blocks are kept as prose
    #: (moderation/code_prose.py): a request can be written as a comment.
    reads_code_comments: ClassVar[bool] = False
    #: Whether this check judges words without the writer's intent, so that a block of a text
    #: with a protective intent and no operational ask becomes a flag (moderation/intent.py).
    lowered_by_intent: ClassVar[bool] = False
    #: What an unexpected error in this check means unless settings or the admin say otherwise.
    default_failure_policy: ClassVar[FailurePolicy] = FailurePolicy.OPEN
    #: Default score threshold, for checks that have one.
    default_threshold: ClassVar[float | None] = None

    def __init__(self, *, threshold: float | None = None) -> None:
        self.threshold = threshold if threshold is not None else self.default_threshold

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        """Judge `text` (user input or model output, per `direction`).

        Returns a `Verdict`; `Verdict.allow()` when nothing is wrong. Span offsets in the
        verdict index `text`. Raises `CheckError` when no answer can be given.
        """
        raise NotImplementedError
