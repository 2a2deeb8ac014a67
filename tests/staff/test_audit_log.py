"""The audit log: every admin write (users, plans, tokens, keys, moderation rules, any model the
admin changes) is recorded with who, what, when, the target, and the object before and after;
the log itself is read-only in the admin and append-only in PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import DatabaseError, transaction
from django.test import Client

from accounts.models import ApiToken, Plan, User
from accounts.services import token_issue
from api.models import ApiKey
from api.services import api_key_create
from moderation.models import ModerationRule
from staff.admin import AuditedAdmin
from staff.audit import audit_record
from staff.models import AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def _form_data(client: Client, url: str) -> dict[str, Any]:
    """What the admin's change form would post back unchanged."""
    form = client.get(url).context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if field.disabled or value is None:
            continue
        data[name] = [str(v) for v in value] if isinstance(value, list | tuple) else value
    return data


def test_every_model_admin_is_audited_but_the_log_itself() -> None:
    unaudited = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedAdmin) and model is not AuditEntry
    ]

    assert not unaudited
    for model in (User, Plan, ApiToken, ApiKey, ModerationRule):
        assert model in admin.site._registry


def test_an_admin_edit_of_a_user_records_before_and_after(
    admin_client: Client, superuser: User, make_user: Callable[..., User]
) -> None:
    pro, _ = Plan.objects.get_or_create(name="pro")
    user = make_user()
    url = f"/admin/accounts/user/{user.pk}/change/"
    data = _form_data(admin_client, url)
    data.update(plan=pro.pk, is_active="")  # an unchecked box is absent; "" reads as false
    data.pop("is_active")

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.content[:3000]
    entry = AuditEntry.objects.get(target_type="accounts.user", target_id=str(user.pk))
    assert (entry.source, entry.action, entry.actor_id) == ("admin", "change", superuser.pk)
    assert entry.before["is_active"] is True and entry.after["is_active"] is False
    assert entry.after["plan_id"] == pro.pk and entry.before["plan_id"] != pro.pk
    assert "Plan" in entry.message or "plan" in entry.message


def test_a_password_set_in_the_admin_is_recorded_without_the_hash(
    admin_client: Client, make_user: Callable[..., User]
) -> None:
    user = make_user()
    new_password = "a brand new passphrase 99"

    response = admin_client.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {"password1": new_password, "password2": new_password, "usable_password": "true"},
    )

    assert response.status_code == 302, response.content[:2000]
    user.refresh_from_db()
    entry = AuditEntry.objects.get(target_id=str(user.pk), action="change")
    assert entry.before["password"] != entry.after["password"]  # the change shows ...
    assert user.password not in str(entry.after)  # ... the hash does not


def test_adding_and_deleting_a_plan_in_the_admin_are_recorded(admin_client: Client) -> None:
    added = admin_client.post(
        "/admin/accounts/plan/add/",
        {
            "name": "trial",
            "description": "two weeks",
            "priority": 3,
            "allowed_models": "",
            "cached_answer_billing": "free",
        },
    )
    plan = Plan.objects.get(name="trial")
    deleted = admin_client.post(f"/admin/accounts/plan/{plan.pk}/delete/", {"post": "yes"})

    assert added.status_code == deleted.status_code == 302
    entries = list(AuditEntry.objects.filter(target_type="accounts.plan").order_by("id"))
    assert [(e.action, e.target_id) for e in entries] == [
        ("add", str(plan.pk)),
        ("delete", str(plan.pk)),
    ]
    assert entries[0].before is None and entries[0].after["priority"] == 3
    assert entries[1].before["name"] == "trial" and entries[1].after is None


def test_a_bulk_action_records_each_object_it_changed(
    admin_client: Client, make_user: Callable[..., User]
) -> None:
    owner = make_user()
    _, key = api_key_create(user=owner, name="laptop")
    _, other = api_key_create(user=owner, name="phone")

    response = admin_client.post(
        "/admin/api/apikey/",
        {"action": "revoke_keys", ACTION_CHECKBOX_NAME: [str(key.pk)], "index": 0},
    )

    assert response.status_code == 302
    entry = AuditEntry.objects.get(target_type="api.apikey")
    assert entry.action == "action:revoke_keys" and entry.target_id == str(key.pk)
    assert entry.before["revoked_at"] is None and entry.after["revoked_at"] is not None
    assert entry.before["key_hash"].startswith("<hidden ")
    other.refresh_from_db()
    assert other.revoked_at is None


def test_revoking_tokens_and_editing_moderation_rules_are_recorded(
    admin_client: Client, make_user: Callable[..., User]
) -> None:
    _, token = token_issue(user=make_user())

    admin_client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke_tokens", ACTION_CHECKBOX_NAME: [str(token.pk)], "index": 0},
    )
    admin_client.post(
        "/admin/moderation/moderationrule/add/",
        {
            "pattern": "forbidden phrase",
            "kind": "word",
            "categories": '["harassment"]',
            "action": "block",
            "direction": "both",
            "enabled": "on",
        },
    )

    actions = set(AuditEntry.objects.values_list("target_type", "action"))
    assert ("accounts.apitoken", "action:revoke_tokens") in actions
    assert ("moderation.moderationrule", "add") in actions, ModerationRule.objects.all()


def test_an_action_that_changes_nothing_records_nothing(
    admin_client: Client, make_user: Callable[..., User]
) -> None:
    _, token = token_issue(user=make_user())
    ApiToken.objects.filter(pk=token.pk).update(revoked_at="2026-01-01T00:00:00Z")

    admin_client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke_tokens", ACTION_CHECKBOX_NAME: [str(token.pk)], "index": 0},
    )

    assert not AuditEntry.objects.exists()


def test_the_log_is_read_only_in_the_admin(admin_client: Client, superuser: User) -> None:
    entry = audit_record(
        actor=superuser, source="api", action="user.update", target_type="accounts.user",
        target_id=1,
    )  # fmt: skip

    listing = admin_client.get("/admin/staff/auditentry/")
    detail = admin_client.get(f"/admin/staff/auditentry/{entry.pk}/change/")
    add = admin_client.get("/admin/staff/auditentry/add/")
    delete = admin_client.post(f"/admin/staff/auditentry/{entry.pk}/delete/", {"post": "yes"})
    changed = admin_client.post(f"/admin/staff/auditentry/{entry.pk}/change/", {"action": "x"})

    assert listing.status_code == detail.status_code == 200
    assert b"user.update" in listing.content
    assert add.status_code == delete.status_code == changed.status_code == 403
    assert listing.context["action_form"] is None  # no actions, bulk deletion included
    assert AuditEntry.objects.filter(pk=entry.pk, action="user.update").exists()


def test_postgresql_refuses_to_change_or_delete_an_entry(superuser: User) -> None:
    entry = audit_record(
        actor=superuser, source="api", action="user.update", target_type="accounts.user",
        target_id=1,
    )  # fmt: skip

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action="nothing happened")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()

    assert AuditEntry.objects.get(pk=entry.pk).action == "user.update"


def test_deleting_an_account_that_acted_keeps_its_entries(
    superuser: User, make_user: Callable[..., User]
) -> None:
    operator = make_user(is_staff=True)
    audit_record(
        actor=operator, source="api", action="user.update", target_type="accounts.user",
        target_id=superuser.pk,
    )  # fmt: skip

    operator_id = operator.pk
    operator.delete()

    entry = AuditEntry.objects.get()
    assert entry.actor_email == operator.email and entry.actor_id == operator_id
