from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiToken, Plan, User
from accounts.plans import PLAN_LIMIT_FIELDS, plan_user_count, plans_with_user_count
from accounts.services import token_revoke_many


class UserCreationAdminForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's user admin (password handling, permissions), keyed by email."""

    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("display_name", "plan", "priority")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined", "email_verified_at")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "usable_password", "password1", "password2"),
            },
        ),
    )
    list_display = (
        "email",
        "display_name",
        "plan",
        "priority",
        "is_active",
        "is_staff",
        "date_joined",
    )
    list_filter = ("is_active", "is_staff", "is_superuser", "plan", "priority")
    list_select_related = ("plan",)
    search_fields = ("email", "display_name")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined")


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    """Plans are read at every message: an edit here applies to their users' next one."""

    list_display = ("name", *PLAN_LIMIT_FIELDS, "cached_answer_billing", "user_count")
    search_fields = ("name", "description")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Plan]:
        return plans_with_user_count(super().get_queryset(request))

    @admin.display(description="users", ordering="user_total")
    def user_count(self, plan: Plan) -> int:
        return plan_user_count(plan)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued by the API only (the raw token is shown once, to its owner); here they
    can be inspected and revoked, never created or edited."""

    list_display = (
        "prefix",
        "user",
        "name",
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
        "prefix",
        "key_hash",
        "name",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    actions = ("revoke_tokens",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = token_revoke_many(tokens=queryset)
        self.message_user(request, f"Revoked {revoked} token(s).")
