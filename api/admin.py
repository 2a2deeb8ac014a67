from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from api.models import ApiGeneration, ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created by their owners (the raw key is shown once, to them); here they can be
    inspected and revoked, never created or edited."""

    list_display = (
        "prefix",
        "user",
        "name",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("revoked_at", "expires_at")
    search_fields = ("user__email", "prefix", "name")
    list_select_related = ("user",)
    readonly_fields = (
        "user",
        "name",
        "prefix",
        "key_hash",
        "scopes",
        "store_conversations",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    actions = ("revoke_keys",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {revoked} key(s).")


@admin.register(ApiGeneration)
class ApiGenerationAdmin(admin.ModelAdmin):
    list_display = ("generation_id", "user", "key", "model", "stream", "created_at")
    list_filter = ("model", "stream")
    search_fields = ("generation_id", "user__email", "key__prefix")
    list_select_related = ("user", "key")
    readonly_fields = ("generation_id", "user", "key", "model", "stream", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
