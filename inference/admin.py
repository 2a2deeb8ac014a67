from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import Count, OuterRef, QuerySet, Subquery, Sum
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from inference import versions
from inference.models import (
    LanguageModel,
    ModelVersion,
    Route,
    RoutingPolicy,
    UsageRecord,
    route_example_lines,
)

# The window of the registry's cache columns (hit rate, saved tokens).
CACHE_STATS_DAYS = 7


@admin.register(LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "display_name",
        "enabled",
        "is_default",
        "context_length",
        "max_output_tokens",
        "price_prompt_per_1k",
        "price_completion_per_1k",
        "queue",
        "cache_partition",
        "semantic_cache",
        "cache_hit_rate",
        "cache_saved_tokens",
        "updated_at",
    )
    list_filter = ("enabled", "is_default", "cache_partition", "semantic_cache")
    list_editable = ("enabled",)
    actions = ("rollback_version",)
    search_fields = ("name", "display_name", "description")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "display_name", "description", "enabled", "is_default")}),
        ("Loading", {"fields": ("weights", "tokenizer", "queue")}),
        (
            "Generation",
            {
                "fields": (
                    "context_length",
                    "default_temperature",
                    "default_top_p",
                    "default_min_p",
                    "default_max_tokens",
                    "max_output_tokens",
                    "stop_sequences",
                )
            },
        ),
        ("Prices", {"fields": ("price_prompt_per_1k", "price_completion_per_1k")}),
        ("Response cache", {"fields": ("cache_partition", "semantic_cache")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[LanguageModel]:
        """Each model with its answers, cache hits and saved tokens over the last
        CACHE_STATS_DAYS days, from the usage records (one subquery each, grouped by model)."""
        since = timezone.now() - timedelta(days=CACHE_STATS_DAYS)
        records = (
            UsageRecord.objects.filter(model=OuterRef("name"), created_at__gte=since)
            .order_by()
            .values("model")
        )
        hits = records.filter(cached=True)
        return (
            super()
            .get_queryset(request)
            .annotate(
                answer_total=Subquery(records.annotate(n=Count("pk")).values("n")),
                hit_total=Subquery(hits.annotate(n=Count("pk")).values("n")),
                saved_total=Subquery(hits.annotate(n=Sum("saved_tokens")).values("n")),
            )
        )

    @admin.display(description=f"cache hits ({CACHE_STATS_DAYS} d)", ordering="hit_total")
    def cache_hit_rate(self, model: LanguageModel) -> str:
        answers = int(getattr(model, "answer_total", None) or 0)
        hits = int(getattr(model, "hit_total", None) or 0)
        return f"{hits / answers:.1%} of {answers:,}" if answers else "none"

    @admin.display(description=f"tokens saved ({CACHE_STATS_DAYS} d)", ordering="saved_total")
    def cache_saved_tokens(self, model: LanguageModel) -> int:
        return int(getattr(model, "saved_total", None) or 0)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and obj.versions.exists():
            # Its active version configures these (inference.versions.MIRRORED_FIELDS).
            fields += versions.MIRRORED_FIELDS
        return fields

    @admin.action(description="Roll back to the previous version")
    def rollback_version(self, request: HttpRequest, queryset: QuerySet[LanguageModel]) -> None:
        for model in queryset[:ACTION_MAX]:
            _rollback(self, request, model)

    def action_related_objects(self, targets: list[Any]) -> list[Any]:
        """What an action changes beside the selected models (their versions), for the audit
        log (staff.admin.AuditedAdmin)."""
        return list(ModelVersion.objects.filter(model__in=targets).order_by("pk")[:RELATED_MAX])


# Versions an action of the admin changes at once, at most (each is one transaction).
ACTION_MAX = 20
RELATED_MAX = 200


def _rollback(model_admin: admin.ModelAdmin, request: HttpRequest, model: LanguageModel) -> None:
    try:
        done = versions.version_rollback(model=model)
    except versions.VersionError as error:
        model_admin.message_user(request, str(error), messages.ERROR)
        return
    model_admin.message_user(
        request,
        f"{model.name}: {done.restored.label} is active again, {done.retired.label} retired"
        + (f", canary {done.canary_stopped.label} back to draft." if done.canary_stopped else "."),
        messages.SUCCESS,
    )


class VersionActionForm(ActionForm):
    share = forms.IntegerField(required=False, min_value=1, max_value=100, label="Canary share (%)")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    """Versions of a model. New versions are drafts; their state changes only through the
    actions (inference.versions), each in one transaction."""

    list_display = (
        "__str__",
        "state",
        "canary_share",
        "weights",
        "context_length",
        "answers",
        "ttft_ms",
        "tokens_per_s",
        "moderated",
        "thumbs_up",
        "previous",
        "activated_at",
    )
    list_filter = ("state", "model")
    search_fields = ("label", "model__name", "notes", "weights")
    list_select_related = ("model", "previous")
    action_form = VersionActionForm
    actions = (
        "canary_start",
        "canary_stop",
        "promote",
        "retire",
        "rollback",
        "checksum_record",
    )
    STATE_FIELDS = ("state", "canary_share", "previous", "activated_at", "retired_at")
    CONFIG_FIELDS = (
        "weights",
        "weights_sha256",
        "tokenizer",
        "chat_template",
        "context_length",
        "default_temperature",
        "default_top_p",
        "default_min_p",
        "default_max_tokens",
    )
    fieldsets = (
        (None, {"fields": ("model", "label", "notes")}),
        ("Loading", {"fields": ("weights", "weights_sha256", "tokenizer", "chat_template")}),
        (
            "Generation",
            {
                "fields": (
                    "context_length",
                    "default_temperature",
                    "default_top_p",
                    "default_min_p",
                    "default_max_tokens",
                )
            },
        ),
        ("State", {"fields": STATE_FIELDS}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields: tuple[str, ...] = (*self.STATE_FIELDS, "created_at", "updated_at")
        if obj is not None:
            fields += ("model", "label")
            if obj.state != ModelVersion.State.DRAFT:
                # What a version serves with never changes under it: make a new version.
                fields += self.CONFIG_FIELDS
        return fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelVersion]:
        # The figures that decide a promotion: over the last STATS_DAYS days' answers.
        since = timezone.now() - timedelta(days=versions.STATS_DAYS)
        return versions.versions_with_stats(super().get_queryset(request), since=since)

    @admin.display(description=f"answers ({versions.STATS_DAYS} d)", ordering="stat_answers")
    def answers(self, obj: ModelVersion) -> int:
        return int(getattr(obj, "stat_answers", None) or 0)

    @admin.display(description="TTFT (ms)", ordering="stat_ttft_ms")
    def ttft_ms(self, obj: ModelVersion) -> str:
        value = getattr(obj, "stat_ttft_ms", None)
        return "-" if value is None else f"{value:.0f}"

    @admin.display(description="tokens/s", ordering="stat_tokens_per_s")
    def tokens_per_s(self, obj: ModelVersion) -> str:
        value = getattr(obj, "stat_tokens_per_s", None)
        return "-" if value is None else f"{value:.1f}"

    @admin.display(description="moderated", ordering="stat_moderated")
    def moderated(self, obj: ModelVersion) -> str:
        value = getattr(obj, "stat_moderated", None)
        return "-" if value is None else f"{value:.1%}"

    @admin.display(description="thumbs up (ratings)", ordering="stat_thumbs_up")
    def thumbs_up(self, obj: ModelVersion) -> str:
        value = getattr(obj, "stat_thumbs_up", None)
        ratings = int(getattr(obj, "stat_ratings", None) or 0)
        return "-" if value is None else f"{value:.0%} ({ratings})"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A version that answered is named by its answers and bills: retire it instead.
        if obj is not None and obj.state != ModelVersion.State.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def action_related_objects(self, targets: list[Any]) -> list[Any]:
        """What an action changes beside the selected versions (the other versions of their
        models, and the models that mirror the active one), for the audit log."""
        model_ids = {target.model_id for target in targets}
        related: list[Any] = list(LanguageModel.objects.filter(pk__in=model_ids))
        siblings = ModelVersion.objects.filter(model_id__in=model_ids).order_by("pk")
        return related + list(siblings[:RELATED_MAX])

    def _each(self, request: HttpRequest, queryset: QuerySet[ModelVersion], change: Any) -> None:
        for version in queryset.select_related("model")[:ACTION_MAX]:
            try:
                result = change(version)
            except versions.VersionError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, f"{result}: {result.state}.", messages.SUCCESS)

    @admin.action(description="Start as canary (or change its share) with the share given")
    def canary_start(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        try:
            share = VersionActionForm.base_fields["share"].clean(request.POST.get("share"))
        except forms.ValidationError:
            share = None
        if share is None:
            self.message_user(request, "Give a canary share from 1 to 100.", messages.ERROR)
            return
        self._each(
            request, queryset, lambda v: versions.version_canary_start(version=v, share=share)
        )

    @admin.action(description="Stop the canary (back to draft)")
    def canary_stop(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        self._each(request, queryset, lambda v: versions.version_canary_stop(version=v))

    @admin.action(description="Promote to active (the active one is retired)")
    def promote(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        self._each(request, queryset, lambda v: versions.version_promote(version=v))

    @admin.action(description="Retire (drafts and canaries)")
    def retire(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        self._each(request, queryset, lambda v: versions.version_retire(version=v))

    @admin.action(description="Roll back the model of the selected version")
    def rollback(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        models = LanguageModel.objects.filter(pk__in=queryset.values("model_id"))
        for model in models[:ACTION_MAX]:
            _rollback(self, request, model)

    @admin.action(description="Record the weights' checksum (sha256, as they are now)")
    def checksum_record(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        drafts = queryset.filter(state=ModelVersion.State.DRAFT)
        if drafts.count() != queryset.count():
            self.message_user(request, "Only a draft's checksum can be recorded.", messages.ERROR)
            return
        self._each(request, drafts, lambda v: versions.version_checksum_record(version=v))


class UsageModelFilter(admin.SimpleListFilter):
    """Per model, listing every model that has records (also removed or renamed ones)."""

    title = "model"
    parameter_name = "model"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = UsageRecord.objects.order_by("model").values_list("model", flat=True).distinct()
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(model=self.value()) if self.value() else queryset


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    """Read-only: records are written by the worker when a generation ends."""

    list_display = (
        "created_at",
        "user",
        "model",
        "source",
        "api_key_id",
        "finish_reason",
        "cached",
        "prompt_tokens",
        "completion_tokens",
        "saved_tokens",
        "cost",
        "time_to_first_token_ms",
        "duration_ms",
        "generation_id",
    )
    list_filter = (
        UsageModelFilter,
        "source",
        "finish_reason",
        "cached",
        ("created_at", admin.DateFieldListFilter),
    )
    # Per user: ?user__id__exact=<id> (linked from the totals), or search by email.
    search_fields = ("user__email", "generation_id", "conversation_id")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        response = super().changelist_view(request, extra_context)
        context = response.context_data if isinstance(response, TemplateResponse) else None
        if context is not None and "cl" in context:
            # Totals of what the filters select, shown as the page title.
            totals = context["cl"].queryset.aggregate(
                prompt=Sum("prompt_tokens"),
                completion=Sum("completion_tokens"),
                cost=Sum("cost"),
                saved=Sum("saved_tokens"),
            )
            context["usage_totals"] = totals
            context["title"] = _title(totals)
        return response


def _title(totals: dict[str, Any]) -> str:
    prompt, completion = totals["prompt"] or 0, totals["completion"] or 0
    saved = totals.get("saved") or 0
    return (
        f"Usage: {prompt:,} prompt + {completion:,} completion tokens, cost {totals['cost'] or 0}"
        + (f"; {saved:,} tokens saved by the response cache" if saved else "")
    )


@admin.register(RoutingPolicy)
class RoutingPolicyAdmin(admin.ModelAdmin):
    """The one policy of `model: "auto"` (docs/architecture.md, "The automatic router")."""

    list_display = ("__str__", "fallback", "min_similarity", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not RoutingPolicy.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    list_display = ("name", "model", "enabled", "example_count", "updated_at")
    list_filter = ("enabled", "model")

    @admin.display(description="examples")
    def example_count(self, route: Route) -> int:
        return len(route_example_lines(route.examples))
