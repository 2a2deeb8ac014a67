"""Rule edits reach a running process within seconds, with real PostgreSQL and Redis."""

from __future__ import annotations

import multiprocessing
import time

from django.conf import settings
from django.db import connection

from moderation.models import ModerationRule
from moderation.services import rule_create
from tests.moderation.probe import run_probe


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _next(results: multiprocessing.Queue, timeout: float) -> tuple[float, str]:
    return results.get(timeout=timeout)


def test_rule_edits_take_effect_in_another_running_process(rules_db: None) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    stop = context.Event()
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    probe = context.Process(
        target=run_probe,
        args=(_database_url(), prefix, "the bluefish swims", results, stop),
        daemon=True,
    )
    probe.start()
    try:
        _, first = _next(results, timeout=60)
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
        stop.set()
        probe.join(timeout=10)
        if probe.is_alive():
            probe.kill()
