from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
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


class Plan(models.Model):
    """What a user may do: message rates, token budget, concurrency, output length, models and
    scheduling priority. Read live at every admission (`accounts.plans`), so an edit here or a
    change of a user's plan applies to their next message.

    An empty limit takes the deployment's setting named in its help text, which is how the
    seeded `free` plan keeps the behaviour that the settings alone gave before plans existed.
    """

    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=200, blank=True)
    messages_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="0: no limit; empty: CHAT_RATE_PER_MINUTE."
    )
    daily_messages = models.PositiveIntegerField(
        null=True, blank=True, help_text="0: no quota; empty: CHAT_DAILY_MESSAGE_QUOTA."
    )
    monthly_token_budget = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Prompt and completion tokens per calendar month (UTC); 0: no budget; "
        "empty: CHAT_MONTHLY_TOKEN_BUDGET.",
    )
    concurrent_generations = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Answers generated at once; empty: CHAT_MAX_CONCURRENT_GENERATIONS.",
    )
    max_output_tokens = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Upper clamp on an answer's tokens, below the model's own; empty: the model's.",
    )
    allowed_models = ArrayField(
        models.SlugField(max_length=128),
        blank=True,
        default=list,
        help_text="Model names (comma-separated); empty: every enabled model.",
    )
    priority = models.PositiveSmallIntegerField(
        default=5,
        validators=[MaxValueValidator(9)],
        help_text="Scheduling priority, 0 (last) to 9 (first), for Celery and vLLM; a user's "
        "own priority overrides it.",
    )
    cached_answer_billing = models.CharField(
        max_length=8,
        choices=[("free", "free"), ("full", "full")],
        default="free",
        # In the table too: plans written by code that predates the column (a web process of
        # the previous release during a deploy, SQL by hand) get it.
        db_default="free",
        help_text="An answer from the response cache: free (no tokens billed), or full (the "
        "tokens of the answer it repeats, as if generated).",
    )

    class Meta:
        ordering = ("priority", "name")

    def __str__(self) -> str:
        return self.name


def default_plan() -> Plan:
    """The plan of new users (ACCOUNTS_DEFAULT_PLAN). Created with every limit empty (the
    settings' values) should it be missing, e.g. after a test database is flushed."""
    plan, _ = Plan.objects.get_or_create(name=settings.ACCOUNTS_DEFAULT_PLAN)
    return plan


class User(AbstractBaseUser, PermissionsMixin):
    """A person who chats. Logs in by email; usernames do not exist."""

    class Priority(models.IntegerChoices):
        LOW = 0, "low"
        NORMAL = 5, "normal"
        HIGH = 9, "high"

    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=150, blank=True)
    # Empty: the plan's priority. Set, it overrides the plan's for this user.
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, null=True, blank=True)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="users")
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
        if self.plan_id is None:
            self.plan = default_plan()
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
