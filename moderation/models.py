"""Admin-editable rules, the allowlist, per-check settings and the event log (PostgreSQL)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from moderation.allowlist import validate_phrase
from moderation.policy import Category
from moderation.regexes import PatternError, validate_pattern, word_pattern

CATEGORY_MAX = 40
# Personal data is redacted, never blocked: it has no action to choose.
_CATEGORY_CHOICES = [(c.value, c.value) for c in Category if c is not Category.PII]


def validate_categories(value: object) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("Give at least one category, as a list of names.")
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > CATEGORY_MAX:
            raise ValidationError(
                f"Each category is a non-empty name of at most {CATEGORY_MAX} characters."
            )


class RuleDirection(models.TextChoices):
    INPUT = "input", "input (user messages)"
    OUTPUT = "output", "output (model answers)"
    BOTH = "both", "both"


class ModerationRule(models.Model):
    """A word or regular expression that admins maintain on top of the built-in checks."""

    class Kind(models.TextChoices):
        WORD = "word", "word or phrase (whole words, case-insensitive)"
        REGEX = "regex", "regular expression (RE2, case-insensitive)"

    class RuleAction(models.TextChoices):
        BLOCK = "block", "block"
        FLAG = "flag", "flag for review"
        REDACT = "redact", "redact the match"

    pattern = models.CharField(max_length=2000)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.WORD)
    categories = models.JSONField(default=list, validators=[validate_categories])
    action = models.CharField(max_length=8, choices=RuleAction.choices, default=RuleAction.BLOCK)
    direction = models.CharField(
        max_length=8, choices=RuleDirection.choices, default=RuleDirection.BOTH
    )
    enabled = models.BooleanField(default=True)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.pattern[:60]}"

    def regex(self) -> str:
        return word_pattern(self.pattern) if self.kind == self.Kind.WORD else self.pattern

    def clean(self) -> None:
        self.pattern = self.pattern.strip()
        if not self.pattern:
            raise ValidationError({"pattern": "The pattern may not be empty."})
        try:
            validate_pattern(self.regex())
        except PatternError as exc:
            raise ValidationError({"pattern": str(exc)}) from None


class AllowlistEntry(models.Model):
    """A phrase that no check may act on (a known false positive such as "Scunthorpe").
    Personal data inside an allowlisted phrase is not redacted either."""

    phrase = models.CharField(max_length=500)
    enabled = models.BooleanField(default=True)
    note = models.TextField(blank=True)
    source_event = models.ForeignKey(
        "ModerationEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["phrase"]
        verbose_name_plural = "allowlist entries"

    def __str__(self) -> str:
        return self.phrase

    def clean(self) -> None:
        self.phrase = " ".join(self.phrase.split())
        if len(self.phrase) < 2:
            raise ValidationError({"phrase": "An allowlist phrase needs at least 2 characters."})
        try:
            validate_phrase(self.phrase)
        except PatternError as exc:
            raise ValidationError({"phrase": str(exc)}) from None


class CheckSetting(models.Model):
    """An admin override for one check: on/off, threshold, failure policy. Blank fields keep
    the value from settings."""

    name = models.CharField(
        max_length=200,
        unique=True,
        help_text="A check's short name (e.g. 'toxicity') or a path under moderation.checks.",
    )
    enabled = models.BooleanField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    failure_policy = models.CharField(
        max_length=8, blank=True, choices=[("open", "fail open"), ("closed", "fail closed")]
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from moderation.registry import canonical_name, resolve_path

        self.name = canonical_name(self.name.strip())
        try:
            resolve_path(self.name)
        except ValueError as exc:
            raise ValidationError({"name": str(exc)}) from None
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValidationError({"threshold": "A threshold is a score between 0 and 1."})


class CategoryPolicy(models.Model):
    """The operator's action for one category of the policy (moderation/policy.py): block (the
    checks' verdict stands), flag (sent and recorded for review) or allow (ignored). Overrides
    MODERATION_CATEGORY_ACTIONS; a sub-category without a row of its own follows its parent's.
    Edits reach every process within MODERATION_RULES_REFRESH_SECONDS."""

    class PolicyAction(models.TextChoices):
        BLOCK = "block", "block"
        FLAG = "flag", "flag for review (send it)"
        ALLOW = "allow", "allow (ignore the category)"

    category = models.CharField(max_length=CATEGORY_MAX, unique=True, choices=_CATEGORY_CHOICES)
    action = models.CharField(
        max_length=8, choices=PolicyAction.choices, default=PolicyAction.BLOCK
    )
    note = models.TextField(blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category"]
        verbose_name_plural = "category policies"

    def __str__(self) -> str:
        return f"{self.category}: {self.action}"


class RulesVersion(models.Model):
    """One row whose counter goes up on every edit of rules, allowlist or check settings.
    Processes compare it (through the cache) with the version they loaded."""

    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return str(self.version)


class ModerationEvent(models.Model):
    """Every non-allow verdict: what was caught, where, and what a reviewer made of it."""

    class ReviewStatus(models.TextChoices):
        PENDING = "pending", "pending"
        CONFIRMED = "confirmed", "confirmed"
        FALSE_POSITIVE = "false_positive", "false positive"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    direction = models.CharField(max_length=8, choices=RuleDirection.choices[:2])
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    conversation_id = models.CharField(max_length=64, blank=True, db_index=True)
    generation_id = models.CharField(max_length=64, blank=True, db_index=True)
    request_id = models.CharField(max_length=128, blank=True)
    # The checked text with some of what came before it (streamed output), for the reviewer.
    text = models.TextField()
    matched = models.CharField(max_length=500, blank=True)
    categories = models.JSONField(default=list)
    action = models.CharField(max_length=8)
    check_name = models.CharField(max_length=200)
    score = models.FloatField(default=0.0)
    reason = models.CharField(max_length=500, blank=True)
    review_status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.PENDING
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["review_status", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} {','.join(self.categories)} by {self.check_name}"
