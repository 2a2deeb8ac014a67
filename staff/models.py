"""The audit log: every staff action, through the staff API or the admin, one row each."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """Who did what to which object, when, and the object before and after (JSON).

    Append-only: the admin shows it read-only, and a PostgreSQL trigger (migration 0001)
    refuses any UPDATE or DELETE of a row. The actor is kept as an id and an email rather
    than a foreign key, so that deleting the account (which must stay possible) changes no
    row of the log.
    """

    class Source(models.TextChoices):
        API = "api", "staff API"
        ADMIN = "admin", "admin"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_email = models.CharField(max_length=254, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices)
    # `user.update`, `generation.stop`; from the admin `add`, `change`, `delete` or
    # `action:<name>`.
    action = models.CharField(max_length=100)
    # `app_label.model` of the target (`accounts.user`, `chat.generation`), and its id.
    target_type = models.CharField(max_length=100)
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # Django's change message for admin edits ("Changed plan and is_active."), or a note.
    message = models.TextField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["target_type", "target_id"], name="staff_audit_target"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.actor_email or self.actor_id} {self.action} {self.target_type}:{self.target_id}"
        )
