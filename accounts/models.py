from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone

# Raw bearer tokens start with this marker so that people, logs and secret scanners can tell
# what a leaked string is. Only the hash of the whole raw token is ever stored.
TOKEN_MARKER = "chat_"  # noqa: S105 - a public marker, not a secret
# What the admin shows of a token: the marker plus a few random characters (about 36 bits of a
# 256-bit secret), enough to tell tokens apart, useless for guessing one.
TOKEN_DISPLAY_LENGTH = len(TOKEN_MARKER) + 6


def normalize_email(email: str) -> str:
    """The one spelling of an address we store and look up: trimmed and lower-cased.

    Lower-casing the local part too is deliberate: two accounts differing only in case are
    always a mistake or an impersonation attempt.
    """
    return BaseUserManager.normalize_email(email.strip()).lower()


def token_hash(raw_token: str) -> str:
    """SHA-256 hex digest of a raw token. Tokens are 256 random bits, so no salt or slow hash
    is needed (nothing to brute-force), and a plain digest allows an indexed lookup."""
    return hashlib.sha256(raw_token.encode("utf-8")).hexdigest()


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        # Whoever creates an account here (the admin, a command, a script) vouches for the
        # address; only self-service registration starts unverified (accounts.services).
        extra.setdefault("email_verified_at", timezone.now())
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        extra.setdefault("email_verified_at", timezone.now())
        return self._create(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who chats. Logs in by email; usernames do not exist."""

    class Priority(models.IntegerChoices):
        LOW = 0, "low"
        NORMAL = 5, "normal"
        HIGH = 9, "high"

    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=150, blank=True)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # When the owner proved the address is theirs (the emailed link); null: not yet. While
    # ACCOUNTS_VERIFY_EMAIL is on, an unverified account cannot sign in.
    email_verified_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        # Admin forms go through here before their uniqueness check, so "A@x.org" cannot
        # become a second account beside "a@x.org".
        super().clean()
        self.email = normalize_email(self.email)

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Django keeps the new raw password in `_password` from `set_password` until this save
        # (a hash upgrade at login clears it first, so it does not count as a change).
        password_changed = getattr(self, "_password", None) is not None and not self._state.adding
        super().save(*args, **kwargs)
        if password_changed:
            # Other sessions end with a new password (their auth hash no longer matches); a
            # bearer token, perhaps the very thing that leaked, must not outlive it either.
            self.api_tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


class ApiToken(models.Model):
    """An opaque bearer token for mobile and API clients. Only its SHA-256 is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=TOKEN_DISPLAY_LENGTH, editable=False)
    name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user_id})"

    def is_usable(self, *, now: datetime | None = None) -> bool:
        """Not revoked and not expired (the owner's `is_active` is checked separately)."""
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now
