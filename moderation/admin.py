"""The admin console for moderation: rules, allowlist, check settings and the review queue."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from moderation import selectors, services
from moderation.models import (
    AllowlistEntry,
    CategoryPolicy,
    CheckSetting,
    ModerationEvent,
    ModerationRule,
)


@admin.register(ModerationRule)
class ModerationRuleAdmin(admin.ModelAdmin):
    list_display = ("pattern", "kind", "categories", "action", "direction", "enabled", "updated_at")
    list_filter = ("enabled", "action", "direction", "kind")
    search_fields = ("pattern", "note")
    list_editable = ("enabled",)
    readonly_fields = ("created_by", "created_at", "updated_at")

    def save_model(
        self, request: HttpRequest, obj: ModerationRule, form: Any, change: bool
    ) -> None:
        if not change:
            obj.created_by_id = request.user.pk
        super().save_model(request, obj, form, change)


@admin.register(AllowlistEntry)
class AllowlistEntryAdmin(admin.ModelAdmin):
    list_display = ("phrase", "enabled", "note", "source_event", "updated_at")
    list_filter = ("enabled",)
    search_fields = ("phrase", "note")
    readonly_fields = ("source_event", "created_by", "created_at", "updated_at")

    def save_model(
        self, request: HttpRequest, obj: AllowlistEntry, form: Any, change: bool
    ) -> None:
        if not change:
            obj.created_by_id = request.user.pk
        super().save_model(request, obj, form, change)


@admin.register(CheckSetting)
class CheckSettingAdmin(admin.ModelAdmin):
    list_display = ("name", "enabled", "threshold", "failure_policy", "updated_at")


@admin.register(CategoryPolicy)
class CategoryPolicyAdmin(admin.ModelAdmin):
    """The action per category of the policy (block, flag, allow), applied live: every process
    reloads within MODERATION_RULES_REFRESH_SECONDS of a save."""

    list_display = ("category", "action", "note", "updated_by", "updated_at")
    list_editable = ("action",)
    readonly_fields = ("updated_by", "updated_at")

    def save_model(
        self, request: HttpRequest, obj: CategoryPolicy, form: Any, change: bool
    ) -> None:
        obj.updated_by_id = request.user.pk
        super().save_model(request, obj, form, change)


class CategoryFilter(admin.SimpleListFilter):
    title = "category"
    parameter_name = "category"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        seen = {c for _, c, _ in selectors.event_counts_per_category_per_day(days=90)}
        return [(c, c) for c in sorted(seen)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value():
            return queryset.filter(categories__contains=[self.value()])
        return queryset


@admin.register(ModerationEvent)
class ModerationEventAdmin(admin.ModelAdmin):
    """The review queue: newest first, filter, read the text in context, then judge."""

    list_display = (
        "created_at",
        "direction",
        "action",
        "categories",
        "check_name",
        "excerpt",
        "user",
        "review_status",
    )
    list_filter = (
        "review_status",
        CategoryFilter,
        "action",
        "direction",
        "check_name",
        "created_at",
    )
    search_fields = ("text", "matched", "conversation_id", "generation_id", "user__email")
    date_hierarchy = "created_at"
    actions = ("mark_confirmed", "mark_false_positive", "make_allowlist_entry")
    readonly_fields = tuple(
        f.name for f in ModerationEvent._meta.fields if f.name not in {"review_status"}
    )
    change_list_template = "admin/moderation/moderationevent/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="text")
    def excerpt(self, event: ModerationEvent) -> str:
        return event.text[:120]

    def _review(
        self, request: HttpRequest, queryset: QuerySet[ModerationEvent], status: str
    ) -> None:
        for event in queryset:
            services.event_review(event_id=event.pk, status=status, reviewer_id=request.user.pk)
        self.message_user(
            request, f"{queryset.count()} event(s) marked {status.replace('_', ' ')}."
        )

    @admin.action(description="Mark confirmed")
    def mark_confirmed(self, request: HttpRequest, queryset: QuerySet[ModerationEvent]) -> None:
        self._review(request, queryset, ModerationEvent.ReviewStatus.CONFIRMED)

    @admin.action(description="Mark false positive")
    def mark_false_positive(
        self, request: HttpRequest, queryset: QuerySet[ModerationEvent]
    ) -> None:
        self._review(request, queryset, ModerationEvent.ReviewStatus.FALSE_POSITIVE)

    @admin.action(description="False positive: make allowlist entry from what matched")
    def make_allowlist_entry(
        self, request: HttpRequest, queryset: QuerySet[ModerationEvent]
    ) -> None:
        created = []
        for event in queryset:
            try:
                entry = services.allowlist_entry_from_event(
                    event_id=event.pk, reviewer_id=request.user.pk
                )
            except Exception as exc:  # a validation error on one event must not stop the rest
                self.message_user(request, f"Event #{event.pk}: {exc}", level=messages.ERROR)
                continue
            created.append(entry.phrase)
        if created:
            self.message_user(request, "Allowlisted: " + "; ".join(repr(p) for p in created))

    def get_urls(self) -> list[URLPattern]:
        stats = path(
            "stats/",
            self.admin_site.admin_view(self.stats_view),
            name="moderation_moderationevent_stats",
        )
        return [stats, *super().get_urls()]

    def stats_view(self, request: HttpRequest) -> HttpResponse:
        """Events per category per day, last 30 days."""
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        rows = selectors.event_counts_per_category_per_day(days=30)
        categories = sorted({c for _, c, _ in rows})
        days: dict[Any, dict[str, int]] = {}
        for day, category, count in rows:
            days.setdefault(day, {})[category] = count
        table = [(day, [counts.get(c, 0) for c in categories]) for day, counts in days.items()]
        context = {
            **self.admin_site.each_context(request),
            "title": "Moderation events per category per day",
            "opts": self.model._meta,
            "categories": categories,
            "table": table,
        }
        return TemplateResponse(request, "admin/moderation/stats.html", context)
