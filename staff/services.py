"""Writes of the staff console: each one checks, acts through the path the rest of the
platform uses, and records itself in the audit log in the same transaction.

- `user_update`: plan, suspension (`is_active`), staff status. A save of the user that
  changes `is_active` is what closes the user's open websockets (`chat.signals`: every
  connection authenticates again and closes with 4401) and what refuses their bearer tokens,
  sessions and API keys (each checks `is_active` at every use); reactivation restores them.
- `generation_stop`: the kill switch, the user's own stop (`chat.generation.stop`).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest

from accounts.models import Plan, User
from chat import selectors as chat_selectors
from chat.generation import stop
from chat.generation.record import FINAL_STATES
from config.errors import ApiError
from staff.audit import audit_record, snapshot, type_label
from staff.models import AuditEntry

USER_FIELDS = frozenset({"plan", "is_active", "is_staff"})
# The audit log's name of a generation (it lives in the conversation store, not in a table).
GENERATION_TARGET = "chat.generation"


def _bad(field: str, problem: str) -> ApiError:
    return ApiError("bad_request", f"{field}: {problem}", fields={field: [problem]})


def user_changes_clean(data: dict[str, Any]) -> dict[str, Any]:
    """The validated changes of a PATCH body: `plan` (a plan's name), `is_active` and
    `is_staff` (booleans). Anything else, or nothing at all, is a 400."""
    unknown = sorted(set(data) - USER_FIELDS)
    if unknown:
        raise ApiError(
            "bad_request",
            f"Unknown fields: {', '.join(unknown)}. Allowed: {', '.join(sorted(USER_FIELDS))}.",
            fields={name: ["unknown field"] for name in unknown},
        )
    if not data:
        raise ApiError("bad_request", "Nothing to change: send plan, is_active or is_staff.")
    changes: dict[str, Any] = {}
    for name in ("is_active", "is_staff"):
        if name in data:
            if not isinstance(data[name], bool):
                raise _bad(name, "must be true or false")
            changes[name] = data[name]
    if "plan" in data:
        name = data["plan"]
        if not isinstance(name, str) or not name:
            raise _bad("plan", "must be a plan's name")
        plan = Plan.objects.filter(name=name).first()
        if plan is None:
            known = ", ".join(Plan.objects.order_by("name").values_list("name", flat=True))
            raise _bad("plan", f"no plan named {name!r} (plans: {known})")
        changes["plan"] = plan
    return changes


def _may_change(actor: User, target: User, changes: dict[str, Any]) -> None:
    """Who may change what: changing users needs the `accounts.change_user` permission (the
    admin's own rule); staff status and superusers' accounts are for superusers; nobody
    suspends or demotes themselves (the console would lock its last operator out)."""
    if not actor.has_perm("accounts.change_user"):
        raise ApiError("forbidden", "Changing users needs the accounts.change_user permission.")
    if "is_staff" in changes and not actor.is_superuser:
        raise ApiError("forbidden", "Only a superuser may grant or remove staff status.")
    if target.is_superuser and not actor.is_superuser:
        raise ApiError("forbidden", "Only a superuser may change a superuser's account.")
    if target.pk == actor.pk:
        for name in ("is_active", "is_staff"):
            if changes.get(name) is False:
                raise _bad(name, "you cannot remove this from your own account")


def user_update(
    *, actor: User, user_id: int, data: dict[str, Any], request: HttpRequest | None = None
) -> User:
    """Apply a PATCH to a user, recorded in the audit log; raises `ApiError` (400, 403, 404)
    and changes nothing when any part is refused."""
    changes = user_changes_clean(data)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise ApiError("not_found", "No such user.")
        _may_change(actor, user, changes)
        before = snapshot(user)
        for name, value in changes.items():
            setattr(user, name, value)
        fields = ["plan" if name == "plan" else name for name in changes]
        user.save(update_fields=fields)
        audit_record(
            actor=actor,
            source=AuditEntry.Source.API,
            action="user.update",
            target_type=type_label(User),
            target_id=user.pk,
            target_repr=user.email,
            before=before,
            after=snapshot(user),
            request=request,
        )
    return User.objects.select_related("plan").get(pk=user.pk)


def generation_stop(
    *, actor: User, generation_id: str, request: HttpRequest | None = None
) -> dict[str, Any]:
    """Stop a live generation of any user, as its owner's `generation.stop` does: the worker
    aborts it, keeps the text so far, and every client following it gets `generation.done`
    with `finish_reason: "stopped"`. `not_found` for an unknown id, `conflict` for one that
    has ended already. Returns what was stopped."""
    document = chat_selectors.generation_get_any_owner(generation_id=generation_id)
    if document is None:
        raise ApiError("not_found", "No such generation.")
    if document.get("state") in FINAL_STATES:
        raise ApiError("conflict", f"The generation has ended already (state {document['state']}).")
    before = {
        "state": document.get("state"),
        "owner_id": document["owner_id"],
        "model": document.get("model"),
        "usage": document.get("usage"),
        "seq": document.get("seq") or 0,
        "worker": document.get("worker"),
    }
    audit_record(
        actor=actor,
        source=AuditEntry.Source.API,
        action="generation.stop",
        target_type=GENERATION_TARGET,
        target_id=generation_id,
        target_repr=f"{document.get('model')} for user {document['owner_id']}",
        before=before,
        after={**before, "stop_requested": True},
        request=request,
    )
    # Published after the entry is written: a stop nobody can account for never happens.
    stop.request(owner_id=document["owner_id"], generation_id=generation_id)
    return {"generation_id": generation_id, "state": before["state"], "stop_requested": True}
