from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Count, OuterRef, QuerySet, Subquery, Sum
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from inference.models import (
    LanguageModel,
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
