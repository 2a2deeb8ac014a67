"""Per-user API keys for the OpenAI-compatible API (`/v1/`), and which key asked for what."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

# Raw keys look like OpenAI's (`sk-…`), so that SDKs, people and secret scanners recognise
# them. Only the SHA-256 of the whole raw key is stored (accounts.models.token_hash).
KEY_MARKER = "sk-"
# What is shown of a key after its creation: the marker and 8 random characters (48 of its 256
# bits): enough to tell keys apart, useless for guessing one.
KEY_PREFIX_LENGTH = len(KEY_MARKER) + 8

SCOPE_CHAT = "chat"
SCOPE_MODELS = "models"
SCOPE_MODERATIONS = "moderations"
SCOPE_EMBEDDINGS = "embeddings"
SCOPES = (SCOPE_CHAT, SCOPE_MODELS, SCOPE_MODERATIONS, SCOPE_EMBEDDINGS)


def default_scopes() -> list[str]:
    return list(SCOPES)


class ApiKey(models.Model):
    """A user's key for `/v1/`. It acts for its owner, within its scopes, until it expires or
    is revoked; a suspended owner's keys are refused."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=KEY_PREFIX_LENGTH, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=default_scopes)
    # Off (the default), the API is stateless: nothing of an exchange is kept. On, each chat
    # completion is kept as a conversation of the owner's, listed like the app's.
    store_conversations = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at", "-id"]
        verbose_name = "API key"
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["user", "revoked_at"], name="api_key_user_live"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    def is_usable(self, *, now: datetime | None = None) -> bool:
        """Not revoked and not expired (the owner's `is_active` is checked separately)."""
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class ApiGeneration(models.Model):
    """One generation asked for through `/v1/`: its source is the API and this key. The bill
    itself is `inference.UsageRecord`, written by the worker under the same `generation_id`
    however the generation ends (a client that disconnected included)."""

    generation_id = models.CharField(max_length=64, unique=True)
    key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="generations"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="api_generations",
    )
    model = models.CharField(max_length=128)
    stream = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        verbose_name = "API generation"

    def __str__(self) -> str:
        return f"{self.generation_id} ({self.model})"
