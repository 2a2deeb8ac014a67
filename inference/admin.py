from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet, Sum
from django.http import HttpRequest
from django.template.response import TemplateResponse

from inference.models import (
    LanguageModel,
    Route,
    RoutingPolicy,
    UsageRecord,
    route_example_lines,
)


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
        "updated_at",
    )
    list_filter = ("enabled", "is_default")
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
        ("History", {"fields": ("created_at", "updated_at")}),
    )


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
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "time_to_first_token_ms",
        "duration_ms",
        "generation_id",
    )
    list_filter = (
        UsageModelFilter,
        "source",
        "finish_reason",
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
                prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost")
            )
            context["usage_totals"] = totals
            context["title"] = _title(totals)
        return response


def _title(totals: dict[str, Any]) -> str:
    prompt, completion = totals["prompt"] or 0, totals["completion"] or 0
    return (
        f"Usage: {prompt:,} prompt + {completion:,} completion tokens, cost {totals['cost'] or 0}"
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
