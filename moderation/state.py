"""The per-process copy of everything admins edit (rules, allowlist, check settings, the
action per category).

Every edit bumps a version (a fresh number stored in PostgreSQL and mirrored in the cache,
Redis). Each process compares the cached version with the one it loaded at most every
`MODERATION_RULES_REFRESH_SECONDS` and reloads from PostgreSQL when they differ: edits reach
every web and worker process within about that long, with no restart and one cheap cache read
per interval on the hot path.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import re2
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from moderation.allowlist import Allowlist
from moderation.regexes import PatternError, compile_pattern

logger = logging.getLogger(__name__)

VERSION_KEY = "moderation:rules_version"


@dataclass(frozen=True)
class CompiledRule:
    id: int
    regex: re2._Regexp
    pattern: str
    categories: tuple[str, ...]
    action: str
    direction: str


@dataclass(frozen=True)
class BrokenRule:
    """An enabled rule whose pattern cannot be compiled. The rules check fails closed in its
    direction rather than run as if the rule did not exist."""

    id: int
    direction: str
    error: str


@dataclass(frozen=True)
class CheckOverride:
    enabled: bool | None
    threshold: float | None
    failure_policy: str


@dataclass(frozen=True)
class Snapshot:
    version: int
    rules: tuple[CompiledRule, ...] = ()
    broken_rules: tuple[BrokenRule, ...] = ()
    allowlist: Allowlist | None = None
    overrides: dict[str, CheckOverride] = field(default_factory=dict)
    # The admin's action per category (CategoryPolicy rows): category -> block|flag|allow.
    category_actions: dict[str, str] = field(default_factory=dict)


EMPTY = Snapshot(version=-1)


class StateUnavailable(Exception):
    """Neither the cache nor PostgreSQL could be read and nothing was loaded before."""


def _new_version() -> int:
    # A fresh value rather than a counter: a restored database or a flushed cache can never
    # bring back a number a process already holds.
    return time.time_ns()


def version_bump() -> int:
    """Record that rules changed. Call after the edit commits (see `version_bump_on_commit`)."""
    from moderation.models import RulesVersion

    version = _new_version()
    RulesVersion.objects.update_or_create(pk=1, defaults={"version": version})
    try:
        cache.set(VERSION_KEY, version, timeout=None)
    except Exception:
        logger.warning("moderation: could not publish rules version to the cache", exc_info=True)
    _local.checked_at = float("-inf")
    return version


def version_bump_on_commit() -> None:
    transaction.on_commit(version_bump)


def current_version() -> int:
    """The published version: from the cache, else from PostgreSQL (re-publishing it)."""
    try:
        cached = cache.get(VERSION_KEY)
        if cached is not None:
            return int(cached)
    except Exception:
        logger.warning("moderation: cache unreachable, reading rules version from the database")
    from moderation.models import RulesVersion

    row = RulesVersion.objects.filter(pk=1).values_list("version", flat=True).first()
    version = int(row or 0)
    try:
        cache.add(VERSION_KEY, version, timeout=None)
    except Exception:
        logger.debug("moderation: cache still unreachable", exc_info=True)
    return version


def _load(version: int) -> Snapshot:
    from moderation.models import AllowlistEntry, CategoryPolicy, CheckSetting, ModerationRule

    rules: list[CompiledRule] = []
    broken: list[BrokenRule] = []
    for rule in ModerationRule.objects.filter(enabled=True).order_by("id"):
        try:
            regex = compile_pattern(rule.regex())
        except PatternError as exc:
            # Saved before validation existed or written around the admin. Skipping it would
            # let through what it was written to stop: the rules check fails closed instead.
            logger.error("moderation: rule %s has an invalid pattern (%s)", rule.id, exc)
            broken.append(BrokenRule(rule.id, rule.direction, str(exc)))
            continue
        rules.append(
            CompiledRule(
                id=rule.id,
                regex=regex,
                pattern=rule.pattern,
                categories=tuple(rule.categories),
                action=rule.action,
                direction=rule.direction,
            )
        )
    allowlist = Allowlist.compile(
        AllowlistEntry.objects.filter(enabled=True).values_list("phrase", flat=True)
    )
    overrides = {
        row.name: CheckOverride(row.enabled, row.threshold, row.failure_policy)
        for row in CheckSetting.objects.all()
    }
    category_actions = dict(CategoryPolicy.objects.values_list("category", "action"))
    return Snapshot(
        version=version,
        rules=tuple(rules),
        broken_rules=tuple(broken),
        allowlist=allowlist,
        overrides=overrides,
        category_actions=category_actions,
    )


class _Local:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.snapshot: Snapshot | None = None
        self.checked_at = float("-inf")


_local = _Local()


def snapshot() -> Snapshot:
    """The current rules, reloaded when the published version moved.

    Raises `StateUnavailable` only when nothing was ever loaded and the stores are down; after
    one successful load a store outage keeps the last known rules.
    """
    now = time.monotonic()
    current = _local.snapshot
    if current is not None and now - _local.checked_at < settings.MODERATION_RULES_REFRESH_SECONDS:
        return current
    with _local.lock:
        current = _local.snapshot
        if (
            current is not None
            and now - _local.checked_at < settings.MODERATION_RULES_REFRESH_SECONDS
        ):
            return current
        try:
            version = current_version()
            if current is None or version != current.version:
                current = _load(version)
                _local.snapshot = current
        except Exception as exc:
            if current is None:
                raise StateUnavailable(str(exc)) from exc
            logger.warning(
                "moderation: could not refresh rules; keeping version %s", current.version
            )
        _local.checked_at = now
        return current


def pin(fixed: Snapshot) -> None:
    """Use `fixed` and never refresh (benchmarks and the evaluation, which run without a
    database). `reset_local` undoes it."""
    with _local.lock:
        _local.snapshot = fixed
        _local.checked_at = float("inf")


def reset_local() -> None:
    """Forget the loaded rules (tests, and after forking a process)."""
    with _local.lock:
        _local.snapshot = None
        _local.checked_at = float("-inf")
