"""Interrupt generations whose worker died (what Celery beat runs as `inference.reap_stale`)."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from inference.reaper import generations_reap


class Command(BaseCommand):
    help = (
        "Mark streaming generations with a stale heartbeat, and queued ones whose task was "
        "lost, as interrupted (keeping their text), bill them and tell their subscribers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--stale-after",
            type=float,
            default=None,
            help="Seconds without a heartbeat (default: INFERENCE_STALE_AFTER_SECONDS).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stale_after = options["stale_after"]
        if stale_after is not None and stale_after <= 0:
            self.stderr.write("--stale-after must be positive")
            raise SystemExit(2)
        result = asyncio.run(generations_reap(stale_after=stale_after))
        self.stdout.write(
            f"interrupted {result.streaming} streaming and {result.queued} lost queued "
            "generation(s)"
        )
