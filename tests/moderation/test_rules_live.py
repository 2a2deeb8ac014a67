"""Rule and category-policy edits reach a running process within seconds, with real
PostgreSQL and Redis."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import time

from django.conf import settings
from django.db import connection

from moderation.models import CategoryPolicy, ModerationRule
from moderation.services import rule_create
from tests.moderation.probe import run_probe


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _next(results: multiprocessing.Queue, timeout: float) -> tuple[float, str]:
    return results.get(timeout=timeout)


# The probe's first answer waits for its checks to load (the semantic check's two models:
# seconds, or about a minute when no process has cached the seed embeddings yet).
FIRST_ANSWER_SECONDS = 180


def _start_probe(
    text: str,
) -> tuple[multiprocessing.Queue, multiprocessing.synchronize.Event, multiprocessing.Process]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    stop = context.Event()
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    probe = context.Process(
        target=run_probe, args=(_database_url(), prefix, text, results, stop), daemon=True
    )
    probe.start()
    return results, stop, probe


def _stop_probe(stop: multiprocessing.synchronize.Event, probe: multiprocessing.Process) -> None:
    stop.set()
    probe.join(timeout=10)
    if probe.is_alive():
        probe.kill()


def test_rule_edits_take_effect_in_another_running_process(rules_db: None) -> None:
    results, stop, probe = _start_probe("the bluefish swims")
    try:
        _, first = _next(results, timeout=FIRST_ANSWER_SECONDS)
        assert first == "allow"

        created_at = time.time()
        rule = rule_create(pattern="bluefish", categories=["spam"], action="block")
        seen_at, action = _next(results, timeout=10)
        assert action == "block"
        assert seen_at - created_at < settings.MODERATION_RULES_REFRESH_SECONDS + 2

        deleted_at = time.time()
        ModerationRule.objects.filter(pk=rule.pk).delete()  # queryset delete: signal per row
        seen_at, action = _next(results, timeout=10)
        assert action == "allow"
        assert seen_at - deleted_at < settings.MODERATION_RULES_REFRESH_SECONDS + 2
    finally:
        _stop_probe(stop, probe)


def test_category_policy_edits_take_effect_in_another_running_process(rules_db: None) -> None:
    rule_create(pattern="bluefish", categories=["violence"], action="block")
    results, stop, probe = _start_probe("the bluefish swims")
    try:
        _, first = _next(results, timeout=FIRST_ANSWER_SECONDS)
        assert first == "block"

        changed_at = time.time()
        policy = CategoryPolicy.objects.create(category="violence", action="flag")
        seen_at, action = _next(results, timeout=10)
        assert action == "flag"
        assert seen_at - changed_at < settings.MODERATION_RULES_REFRESH_SECONDS + 2

        policy.action = "allow"
        policy.save()
        _, action = _next(results, timeout=10)
        assert action == "allow"

        policy.delete()
        _, action = _next(results, timeout=10)
        assert action == "block"
    finally:
        _stop_probe(stop, probe)
