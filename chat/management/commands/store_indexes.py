"""Create the conversation store's indexes on a MongoDB server (idempotent; run at deploy)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from chat.store import get_db, indexes_ensure, store_backend


class Command(BaseCommand):
    help = "Create the conversation store's indexes on the MongoDB server in MONGODB_URL."

    def handle(self, *args: Any, **options: Any) -> None:
        backend = store_backend()
        if backend != "mongodb":
            self.stdout.write(
                f"Skipped: MONGODB_URL names the {backend} stand-in, not a MongoDB server; "
                "stand-ins create their indexes themselves when the store opens."
            )
            return
        names = indexes_ensure(get_db())
        self.stdout.write(
            self.style.SUCCESS(
                f"Indexes in database {settings.MONGODB_DB!r}: {', '.join(sorted(names))}"
            )
        )
