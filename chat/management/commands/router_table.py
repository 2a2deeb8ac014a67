"""Build the by-task router's static MiniLM table ahead (chat/route_embedding.py), so that the
first `model: "auto"` message of a process does not wait for it."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Compute (or check) the router's static MiniLM word-piece table."

    def handle(self, *args: Any, **options: Any) -> None:
        from chat import route_embedding

        began = time.monotonic()
        static = route_embedding.ready()
        self.stdout.write(
            f"{route_embedding.table_path()}: {static.table.shape[0]} word pieces, "
            f"ready in {time.monotonic() - began:.1f} s"
        )
