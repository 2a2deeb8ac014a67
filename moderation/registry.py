"""Which checks run, in which order, with which threshold and failure policy.

Checks are named by dotted path (or by the short names below) in `MODERATION_CHECKS`, and
imported only when first used, so a process that never moderates never loads scikit-learn.
Admins override each check from "Check settings" (on/off, threshold, failure policy).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

from moderation.checks import Check, CheckError
from moderation.state import Snapshot
from moderation.types import Direction, FailurePolicy, Verdict

logger = logging.getLogger(__name__)

BUILTIN_CHECKS = {
    "pii": "moderation.checks.pii.PiiCheck",
    "rules": "moderation.checks.rules.RulesCheck",
    "patterns": "moderation.checks.patterns.PatternCheck",
    "profanity": "moderation.checks.profanity.ProfanityCheck",
    "toxicity": "moderation.checks.toxicity.ToxicityCheck",
    "semantic": "moderation.checks.semantic.SemanticCheck",
    "guard": "moderation.checks.guard.GuardModelCheck",
    "language": "moderation.checks.language.LanguageCheck",
}
# Admin-entered paths must stay inside the project's checks package: the admin form is not a
# way to import arbitrary code.
ALLOWED_PREFIX = "moderation.checks."


_SHORT_NAMES = {path: name for name, path in BUILTIN_CHECKS.items()}


def canonical_name(name: str) -> str:
    """The short name of a built-in check given either spelling; other paths stay as they are."""
    return _SHORT_NAMES.get(name, name)


def resolve_path(name: str, *, trusted: bool = False) -> str:
    """The dotted path for `name`. Paths from settings are `trusted` (the operator's choice);
    paths typed in the admin must be under `ALLOWED_PREFIX`."""
    path = BUILTIN_CHECKS.get(name, name)
    if not trusted and not path.startswith(ALLOWED_PREFIX):
        raise ValueError(
            f"unknown check {name!r}: use a short name or a path under {ALLOWED_PREFIX}"
        )
    return path


@dataclass(frozen=True)
class ConfiguredCheck:
    name: str
    check: Check
    policy: FailurePolicy


class _BrokenCheck(Check):
    """Stands in for a check that could not be imported, so that its failure policy applies."""

    def __init__(self, name: str, error: str) -> None:
        super().__init__()
        self.error = error
        self.broken_name = name

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        raise CheckError(f"check {self.broken_name} could not be loaded: {self.error}")


_instances: dict[tuple[str, float | None], Check] = {}
_lock = threading.Lock()


def _instance(path: str, threshold: float | None) -> Check:
    key = (path, threshold)
    found = _instances.get(key)
    if found is not None:
        return found
    with _lock:
        found = _instances.get(key)
        if found is None:
            try:
                cls = import_string(path)
                found = cls(threshold=threshold)
            except Exception as exc:  # an import error, a missing package, a bad setting
                logger.exception("moderation: could not load check %s", path)
                found = _BrokenCheck(path, f"{type(exc).__name__}: {exc}")
            _instances[key] = found
        return found


def _settings_policy(name: str, check: Check) -> FailurePolicy:
    closed = {canonical_name(n) for n in settings.MODERATION_FAIL_CLOSED}
    if name in closed or (check.name and check.name in closed):
        return FailurePolicy.CLOSED
    if name == "guard":
        return FailurePolicy(settings.MODERATION_GUARD_FAILURE_POLICY)
    return check.default_failure_policy


def configured_checks(state: Snapshot) -> list[ConfiguredCheck]:
    """The enabled checks in run order: settings' list, then admin-enabled extras."""
    names = [canonical_name(n) for n in settings.MODERATION_CHECKS]
    trusted = set(names)
    overrides = {canonical_name(n): o for n, o in state.overrides.items()}
    names += [n for n, o in overrides.items() if o.enabled and n not in names]
    result = []
    for name in dict.fromkeys(names):
        override = overrides.get(name)
        if override is not None and override.enabled is False:
            continue
        try:
            path = resolve_path(name, trusted=name in trusted)
        except ValueError:
            logger.error("moderation: ignoring unknown check %r", name)
            continue
        threshold = override.threshold if override else None
        check = _instance(path, threshold)
        if override and override.failure_policy:
            policy = FailurePolicy(override.failure_policy)
        else:
            policy = _settings_policy(name, check)
        result.append(ConfiguredCheck(name, check, policy))
    return result


def clear_instances() -> None:
    """Drop loaded checks (tests that change settings)."""
    with _lock:
        _instances.clear()
