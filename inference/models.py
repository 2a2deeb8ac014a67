"""The model registry: which language models exist, how to load them and what they cost."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from chat.generation.record import SOURCE_API, SOURCE_WS

STOP_SEQUENCES_MAX = 4
STOP_SEQUENCE_MAX_CHARS = 32


def validate_stop_sequences(value: object) -> None:
    if not isinstance(value, list) or len(value) > STOP_SEQUENCES_MAX:
        raise ValidationError(f"a list of at most {STOP_SEQUENCES_MAX} texts")
    for item in value:
        if not isinstance(item, str) or not 0 < len(item) <= STOP_SEQUENCE_MAX_CHARS:
            raise ValidationError(f"each a text of 1 to {STOP_SEQUENCE_MAX_CHARS} characters")


def default_queue(name: str) -> str:
    return f"inference.{name}"


class CachePartition(models.TextChoices):
    USER = "user", "per user"
    SHARED = "shared", "shared by all users"


class LanguageModel(models.Model):
    """One model users can chat with. `name` is the protocol's `model` value."""

    name = models.SlugField(max_length=128, unique=True)
    display_name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    weights = models.CharField(
        max_length=500,
        help_text="An absolute path, a path relative to INFERENCE_MODEL_DIR, or a hub id.",
    )
    tokenizer = models.CharField(
        max_length=500, blank=True, help_text="Same rules as weights; empty: the weights' own."
    )
    context_length = models.PositiveIntegerField(default=8192, validators=[MinValueValidator(16)])
    default_temperature = models.FloatField(default=0.7, validators=[MinValueValidator(0.0)])
    default_top_p = models.FloatField(
        default=0.95,
        validators=[MinValueValidator(0.01), MaxValueValidator(1.0)],
        help_text=(
            "Nucleus sampling; 1: off. Below 1 the engine sorts the whole vocabulary for every "
            "token: on a CPU that cost about 45% of the throughput at 16 streams "
            "(docs/benchmarks.md). Prefer min-p there."
        ),
    )
    default_min_p = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=(
            "Min-p sampling: drop tokens less likely than this share of the likeliest one; "
            "0: off. Cheap on any hardware."
        ),
    )
    default_max_tokens = models.PositiveIntegerField(default=512, validators=[MinValueValidator(1)])
    stop_sequences = models.JSONField(
        blank=True,
        default=list,
        validators=[validate_stop_sequences],
        help_text=(
            'A JSON list of texts that end every answer (e.g. ["\\nUser:"]), beside the '
            "end-of-sequence token: a base model that chats through a plain transcript writes "
            "the next turn's label itself."
        ),
    )
    max_output_tokens = models.PositiveIntegerField(
        default=2048, validators=[MinValueValidator(1)], help_text="Upper clamp on max_tokens."
    )
    price_prompt_per_1k = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    price_completion_per_1k = models.DecimalField(
        max_digits=12, decimal_places=6, default=Decimal(0)
    )
    queue = models.CharField(
        max_length=200, blank=True, help_text="Celery queue; empty: inference.<name>."
    )
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    # The response cache (inference/cache/, docs/operations.md "Response cache").
    cache_partition = models.CharField(
        max_length=8,
        choices=CachePartition.choices,
        default=CachePartition.USER,
        help_text=(
            "Whose cached answers a request may get. Per user (default): only answers the same "
            "user was given before. Shared: any user's answer to the same context, which "
            "saves more but lets one user's question and answer reach another: a privacy "
            "trade-off, for public-knowledge models only."
        ),
    )
    semantic_cache = models.BooleanField(
        default=False,
        help_text=(
            "Also answer a conversation's first question from a cached answer to a question "
            "that means the same (MiniLM embeddings, INFERENCE_SEMANTIC_CACHE_THRESHOLD)."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            # At most one default model: the one a chat.send without `model` gets.
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="inference_one_default_model",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: object, **kwargs: object) -> None:
        if not self.queue:
            self.queue = default_queue(self.name)
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def weights_location(self) -> str:
        return resolve_location(self.weights)

    @property
    def tokenizer_location(self) -> str:
        return resolve_location(self.tokenizer) if self.tokenizer else self.weights_location


def resolve_location(value: str) -> str:
    """An absolute path as is; a relative path that exists under INFERENCE_MODEL_DIR becomes
    absolute; anything else is taken as a hub id."""
    path = Path(value)
    if path.is_absolute():
        return value
    candidate = Path(settings.INFERENCE_MODEL_DIR) / path
    if candidate.exists() or "/" not in value:
        return str(candidate)
    return value


class UsageRecord(models.Model):
    """What one generation consumed: written exactly once, when the generation ends, however
    it ends. `generation_id` is unique, so a redelivered task or a second reaper cannot bill
    a generation twice."""

    class FinishReason(models.TextChoices):
        STOP = "stop"
        LENGTH = "length"
        STOPPED = "stopped"
        MODERATED = "moderated"
        INTERRUPTED = "interrupted"
        ENGINE_ERROR = "engine_error"
        TIMEOUT = "timeout"

    class Source(models.TextChoices):
        WS = SOURCE_WS, "websocket"
        API = SOURCE_API, "API"

    generation_id = models.CharField(max_length=64, unique=True)
    # Billing history outlives an account deletion; the rows just lose their owner.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usage_records",
    )
    # The registry name at the time (models can be renamed or removed later).
    model = models.CharField(max_length=128, db_index=True)
    # The version that wrote it (`ModelVersion`'s id and label, kept as plain values: the bill
    # outlives the version); null for models without versions and for older records.
    model_version_id = models.PositiveBigIntegerField(null=True, blank=True)
    model_version = models.CharField(max_length=64, blank=True)
    conversation_id = models.CharField(max_length=64, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))
    time_to_first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    finish_reason = models.CharField(max_length=16, choices=FinishReason.choices)
    # Where the generation was asked for: the app's websocket, or the OpenAI-compatible API
    # with one of the user's keys (`api.ApiKey`'s id: a plain integer, as `inference` does not
    # depend on `api`; the bill outlives the key).
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.WS)
    api_key_id = models.PositiveBigIntegerField(null=True, blank=True)
    # Answered by the response cache: the engine did no work. The tokens billed follow the
    # user's plan (`accounts.Plan.cached_answer_billing`, zero by default); `saved_tokens` are
    # the prompt and completion tokens the engine would have processed.
    cached = models.BooleanField(default=False)
    saved_tokens = models.PositiveIntegerField(default=0)
    # The user's plan when the answer was billed (`accounts.Plan`'s name at the time): usage
    # per plan stays what it was when a user changes plans, or a plan is renamed. Empty: not
    # known (a user already deleted when plans began to be kept).
    plan = models.CharField(max_length=64, blank=True, default="")
    # The user's thumbs on the answer (1 up, -1 down; null: none), copied from the store when
    # they rate it (`chat.services.feedback_changed`): per-version statistics read it here.
    feedback_rating = models.SmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=["user", "created_at"], name="inference_usage_user_day"),
            # Per-version statistics (inference.versions.version_stats) read a window of one
            # model's versions.
            models.Index(fields=["model_version_id", "created_at"], name="inference_usage_version"),
        ]

    def __str__(self) -> str:
        return f"{self.generation_id} ({self.model}, {self.finish_reason})"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# --- the automatic router (`model: "auto"`, chat/model_router.py) ------------------------------

ROUTE_EXAMPLES_MAX = 200
ROUTE_EXAMPLE_MAX_CHARS = 300


def route_example_lines(text: str) -> list[str]:
    """A route's example utterances: one per non-blank line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def validate_route_examples(value: str) -> None:
    lines = route_example_lines(value)
    if not lines:
        raise ValidationError("at least one example utterance, one per line")
    if len(lines) > ROUTE_EXAMPLES_MAX:
        raise ValidationError(f"at most {ROUTE_EXAMPLES_MAX} examples")
    if any(len(line) > ROUTE_EXAMPLE_MAX_CHARS for line in lines):
        raise ValidationError(f"each example at most {ROUTE_EXAMPLE_MAX_CHARS} characters")


class RoutingPolicy(models.Model):
    """How `model: "auto"` picks a model: one row (pk 1), edited in the admin."""

    class Strategy(models.TextChoices):
        CHEAPEST = "cheapest", "cheapest first (registry prices)"
        FASTEST = "fastest", "fastest first (measured tokens/s of recent answers)"
        BY_TASK = "by_task", "by task (MiniLM classifier on the message, routes below)"

    class Fallback(models.TextChoices):
        CHEAPEST = "cheapest", "cheapest first"
        FASTEST = "fastest", "fastest first"

    strategy = models.CharField(max_length=16, choices=Strategy.choices, default=Strategy.CHEAPEST)
    fallback = models.CharField(
        max_length=16,
        choices=Fallback.choices,
        default=Fallback.CHEAPEST,
        help_text="By task: the order of the other models after the route's, and of all "
        "models when no route is close enough.",
    )
    min_similarity = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(-1.0), MaxValueValidator(1.0)],
        help_text="By task: a message whose cosine similarity to the nearest route (the mean "
        "of its examples) is below this matches no route and goes by the fallback order. "
        "With the static MiniLM table most messages score 0.85-0.95 (bench/router.py prints "
        "the spread); -1: always the nearest route.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "routing policy"

    def __str__(self) -> str:
        return f"routing policy: {self.get_strategy_display()}"

    def save(self, *args: object, **kwargs: object) -> None:
        self.pk = 1  # one policy
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class Route(models.Model):
    """A task the by-task policy recognises from example utterances, and the model it goes to."""

    name = models.SlugField(max_length=64, unique=True)
    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="routes")
    examples = models.TextField(
        validators=[validate_route_examples],
        help_text=f"Example messages of this task, one per line (at most {ROUTE_EXAMPLES_MAX}).",
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name} -> {self.model.name}"


class ModelVersion(models.Model):
    """One version of a model: the weights it loads and how it answers. A model serves its
    `active` version and, when there is one, a `canary` on `canary_share` percent of new
    conversations (inference.versions; docs/models.md). At most one of each per model.

    `previous` is the version that was active when this one became active: what a rollback
    makes active again."""

    class State(models.TextChoices):
        DRAFT = "draft"
        CANARY = "canary"
        ACTIVE = "active"
        RETIRED = "retired"

    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="versions")
    label = models.SlugField(max_length=64, help_text="Unique per model, e.g. v2 or 2026-12-05.")
    notes = models.TextField(blank=True)
    weights = models.CharField(
        max_length=500,
        help_text="An absolute path, a path relative to INFERENCE_MODEL_DIR, or a hub id.",
    )
    weights_sha256 = models.CharField(
        max_length=64,
        blank=True,
        validators=[RegexValidator(r"^[0-9a-f]{64}$", "64 lowercase hex digits")],
        help_text=(
            "The weights' checksum (inference.versions.weights_digest: every file under the "
            "directory, by relative path). Set: the worker checks it before loading, and "
            "refuses weights that differ. Empty: not checked."
        ),
    )
    tokenizer = models.CharField(
        max_length=500, blank=True, help_text="Same rules as weights; empty: the weights' own."
    )
    chat_template = models.TextField(
        blank=True, help_text="A Jinja chat template; empty: the tokenizer's own."
    )
    context_length = models.PositiveIntegerField(default=8192, validators=[MinValueValidator(16)])
    default_temperature = models.FloatField(default=0.7, validators=[MinValueValidator(0.0)])
    default_top_p = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.01), MaxValueValidator(1.0)]
    )
    default_min_p = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    default_max_tokens = models.PositiveIntegerField(default=512, validators=[MinValueValidator(1)])
    state = models.CharField(max_length=8, choices=State.choices, default=State.DRAFT)
    canary_share = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(100)],
        help_text="Percent of new conversations (and regenerations) a canary answers: 1 to 100.",
    )
    previous = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The version active before this one became active: what a rollback restores.",
    )
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("model", "-created_at")
        constraints = [
            models.UniqueConstraint(fields=["model", "label"], name="inference_version_label"),
            models.UniqueConstraint(
                fields=["model"],
                condition=models.Q(state="active"),
                name="inference_version_one_active",
            ),
            models.UniqueConstraint(
                fields=["model"],
                condition=models.Q(state="canary"),
                name="inference_version_one_canary",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(state="canary", canary_share__gte=1, canary_share__lte=100)
                    | (~models.Q(state="canary") & models.Q(canary_share=0))
                ),
                name="inference_version_canary_share",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.label}"

    @property
    def weights_location(self) -> str:
        return resolve_location(self.weights)

    @property
    def tokenizer_location(self) -> str:
        return resolve_location(self.tokenizer) if self.tokenizer else self.weights_location
