"""The audit log in the admin (read-only), and the auditing of every admin write.

Every other model's admin is re-registered here with `AuditedAdmin` mixed in, so that each
save, deletion and action of the admin (users, plans, tokens, API keys, moderation rules, the
model registry, everything the admin can change) lands in the audit log, with the object
before and after. Doing it here, rather than in each app's admin module, keeps the direction
of imports (`staff` imports the other apps; none of them imports `staff`) and catches admins
added later: `staff` comes after every app with an admin in INSTALLED_APPS, and
tests/staff/test_admin_audit.py checks that every registered admin is audited.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from staff.audit import audit_record, changed_fields, snapshot, stored_snapshot, type_label
from staff.models import AuditEntry

# An action on more selected objects than this is recorded as one entry with their count.
ACTION_SNAPSHOT_MAX = 500
_STASH = "_staff_audit_before"


def _stash(request: HttpRequest) -> dict[tuple[str, str], dict[str, Any] | None]:
    found: dict[tuple[str, str], dict[str, Any] | None] | None = getattr(request, _STASH, None)
    if found is None:
        found = {}
        setattr(request, _STASH, found)
    return found


class AuditedAdmin(admin.ModelAdmin):
    """Records the admin's writes. Django calls `log_addition`, `log_change` and
    `log_deletions` after every successful add, change (the form, a list-editable row, a
    password change) and deletion (the page or the bulk action); the state before a change is
    read from the database just before it is saved. Custom actions, which usually write with
    `QuerySet.update` and call none of those, are recorded around the action."""

    def _key(self, pk: Any) -> tuple[str, str]:
        return (type_label(self.model), str(pk))

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and request.method == "POST":
            # Views that save without save_model (the user's password form) read it here.
            _stash(request)[self._key(obj.pk)] = snapshot(obj)
        return obj

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change and obj.pk is not None:
            # The form has changed `obj` already: the stored row is the state before.
            _stash(request)[self._key(obj.pk)] = stored_snapshot(type(obj), obj.pk)
        super().save_model(request, obj, form, change)

    def _record(
        self,
        request: HttpRequest,
        obj: Any,
        *,
        action: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        message: str = "",
    ) -> None:
        audit_record(
            actor=request.user,
            source=AuditEntry.Source.ADMIN,
            action=action,
            target_type=type_label(obj),
            target_id=obj.pk,
            target_repr=str(obj),
            before=before,
            after=after,
            message=message,
            request=request,
        )

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        self._record(request, obj, action="add", before=None, after=snapshot(obj))
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_change(request, obj, message)
        before = _stash(request).pop(self._key(obj.pk), None)
        text = entry.get_change_message() if entry is not None else ""
        self._record(
            request, obj, action="change", before=before, after=snapshot(obj), message=text
        )
        return entry

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        # Called before the rows are deleted, inside the deletion's transaction.
        for obj in queryset:
            self._record(request, obj, action="delete", before=snapshot(obj), after=None)
        return super().log_deletions(request, queryset)

    def _action_name(self, request: HttpRequest) -> str:
        """The action the admin will run for this POST, read as Django reads it."""
        try:
            index = int(request.POST.get("index", 0))
        except ValueError:
            index = 0
        names = request.POST.getlist("action")
        return names[index] if 0 <= index < len(names) else ""

    def response_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        name = self._action_name(request)
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        select_across = request.POST.get("select_across") in ("1", "True", "true")
        if (
            name == "delete_selected"  # recorded by log_deletions
            or name not in self.get_actions(request)
            or not (selected or select_across)
        ):
            return super().response_action(request, queryset)
        if not select_across:
            queryset = queryset.filter(pk__in=selected)
        targets = list(queryset[: ACTION_SNAPSHOT_MAX + 1])
        # An action may change other rows than those selected (a version's rollback restores
        # its model's previous version): the admin names them (`action_related_objects`).
        related = getattr(self, "action_related_objects", None)
        if related is not None and len(targets) <= ACTION_SNAPSHOT_MAX:
            chosen = {(type(obj), obj.pk) for obj in targets}
            targets += [obj for obj in related(targets) if (type(obj), obj.pk) not in chosen]
        response: HttpResponseBase | None = super().response_action(request, queryset)
        if len(targets) > ACTION_SNAPSHOT_MAX:
            audit_record(
                actor=request.user,
                source=AuditEntry.Source.ADMIN,
                action=f"action:{name}",
                target_type=type_label(self.model),
                target_id="*",
                message=f"Ran on more than {ACTION_SNAPSHOT_MAX} objects: no snapshots.",
                request=request,
            )
            return response
        for obj in targets:
            before = snapshot(obj)
            after = stored_snapshot(type(obj), obj.pk)
            if changed_fields(before, after):
                self._record(request, obj, action=f"action:{name}", before=before, after=after)
        return response


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit log: read it, filter it, search it; nobody adds, changes or deletes here."""

    list_display = (
        "created_at",
        "actor_email",
        "source",
        "action",
        "target_type",
        "target_id",
        "target_repr",
    )
    list_filter = ("source", "action", "target_type", "created_at")
    search_fields = ("actor_email", "target_id", "target_repr", "action", "message")
    date_hierarchy = "created_at"
    readonly_fields = tuple(field.name for field in AuditEntry._meta.fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def audited(model_admin: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    """`model_admin` with `AuditedAdmin` mixed in (itself when it is audited already)."""
    if issubclass(model_admin, AuditedAdmin):
        return model_admin
    return type(f"Audited{model_admin.__name__}", (AuditedAdmin, model_admin), {})


def audit_every_admin(site: admin.AdminSite) -> None:
    """Re-register every model of `site` but the audit log itself with an audited admin."""
    registered: dict[type[models.Model], admin.ModelAdmin] = dict(site._registry)
    for model, model_admin in registered.items():
        if model is AuditEntry or isinstance(model_admin, AuditedAdmin):
            continue
        site.unregister(model)
        site.register(model, audited(type(model_admin)))


audit_every_admin(admin.site)
# The admin's home page links to the console's own pages (the dashboard).
admin.site.index_template = "admin/staff/index.html"
