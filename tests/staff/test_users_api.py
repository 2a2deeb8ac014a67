"""`GET /api/admin/users?q=` and `PATCH /api/admin/users/{id}` (plan, is_active, is_staff):
search and pages, validation that leaves the stored user untouched, who may change what, and
the audit entry of each change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import Plan, User
from staff.models import AuditEntry
from tests.staff.conftest import bearer, patch_json

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pro() -> Plan:
    plan, _ = Plan.objects.get_or_create(name="pro", defaults={"priority": 7})
    return plan


def _patch(actor: User, user: User, body: object) -> Any:
    return patch_json(Client(), f"/api/admin/users/{user.pk}", body, **bearer(actor))


def test_the_list_searches_email_and_name_and_pages_newest_first(
    superuser: User, make_user: Callable[..., User]
) -> None:
    matching = [make_user(display_name=f"Ada {n}") for n in range(3)]
    make_user(display_name="Grace")
    headers = bearer(superuser)

    first = Client().get("/api/admin/users?q=ada&limit=2", **headers).json()
    cursor = first["next_cursor"]
    second = Client().get(f"/api/admin/users?q=ADA&limit=2&cursor={cursor}", **headers).json()

    ids = [row["id"] for row in first["results"] + second["results"]]
    assert ids == [user.pk for user in reversed(matching)]
    assert second["next_cursor"] is None
    row = first["results"][0]
    assert row["plan"] == "free" and row["is_active"] is True and row["email"].startswith("user-")


def test_the_list_filters_by_status_and_plan(
    superuser: User, make_user: Callable[..., User], pro: Plan
) -> None:
    suspended = make_user(is_active=False)
    on_pro = make_user(plan=pro)
    headers = bearer(superuser)

    inactive = Client().get("/api/admin/users?is_active=false", **headers).json()["results"]
    by_plan = Client().get("/api/admin/users?plan=pro", **headers).json()["results"]

    assert [row["id"] for row in inactive] == [suspended.pk]
    assert [row["id"] for row in by_plan] == [on_pro.pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("is_active=maybe", "is_active"),
        ("cursor=forged", "cursor"),
        ("q=" + "x" * 201, "q"),
        ("sort=email", "sort"),
        ("q=a&q=b", "q"),
    ],
)
def test_bad_list_parameters_are_400_naming_the_parameter(
    superuser: User, query: str, field: str
) -> None:
    response = Client().get(f"/api/admin/users?{query}", **bearer(superuser))

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_a_patch_moves_the_user_to_a_plan_and_records_who_did_it(
    superuser: User, make_user: Callable[..., User], pro: Plan
) -> None:
    user = make_user()

    response = _patch(superuser, user, {"plan": "pro"})

    assert response.status_code == 200
    assert response.json()["plan"] == "pro"
    user.refresh_from_db()
    assert user.plan == pro
    entry = AuditEntry.objects.get(action="user.update", target_id=str(user.pk))
    assert (entry.actor_id, entry.actor_email, entry.source) == (
        superuser.pk,
        superuser.email,
        "api",
    )
    assert entry.target_type == "accounts.user" and entry.target_repr == user.email
    assert entry.before["plan_id"] != pro.pk and entry.after["plan_id"] == pro.pk
    assert entry.before["password"].startswith("<hidden ")  # never the hash itself
    assert user.password not in str(entry.before)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"plan": "platinum"}, "plan"),
        ({"plan": 3}, "plan"),
        ({"is_active": "false"}, "is_active"),
        ({"is_staff": None}, "is_staff"),
        ({"email": "x@example.org"}, "email"),
        ({"is_active": False, "priority": 9}, "priority"),
    ],
)
def test_invalid_changes_are_400_and_change_nothing(
    superuser: User, make_user: Callable[..., User], body: dict, field: str
) -> None:
    user = make_user()
    stored = User.objects.filter(pk=user.pk).values().get()

    response = _patch(superuser, user, body)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert User.objects.filter(pk=user.pk).values().get() == stored
    assert not AuditEntry.objects.exists()


def test_an_empty_or_non_object_body_is_400(
    superuser: User, make_user: Callable[..., User]
) -> None:
    user = make_user()

    assert _patch(superuser, user, {}).status_code == 400
    assert _patch(superuser, user, [1]).status_code == 400


def test_an_unknown_user_is_404(superuser: User) -> None:
    response = patch_json(
        Client(), "/api/admin/users/999999", {"is_active": False}, **bearer(superuser)
    )

    assert response.status_code == 404


def test_staff_without_the_change_permission_may_read_but_not_change(
    make_user: Callable[..., User],
) -> None:
    reader = make_user(is_staff=True)
    user = make_user()

    listed = Client().get("/api/admin/users", **bearer(reader))
    refused = _patch(reader, user, {"is_active": False})

    assert listed.status_code == 200
    assert refused.status_code == 403
    user.refresh_from_db()
    assert user.is_active is True


def test_only_a_superuser_grants_staff_or_changes_a_superuser(
    make_user: Callable[..., User], superuser: User
) -> None:
    operator = make_user(is_staff=True)
    operator.user_permissions.add(Permission.objects.get(codename="change_user"))
    user = make_user()

    suspended = _patch(operator, user, {"is_active": False})
    promoted = _patch(operator, user, {"is_staff": True})
    root_touched = _patch(operator, superuser, {"is_active": False})
    promoted_by_root = _patch(superuser, user, {"is_staff": True})

    assert suspended.status_code == 200
    assert promoted.status_code == 403
    assert root_touched.status_code == 403
    assert promoted_by_root.status_code == 200
    user.refresh_from_db()
    superuser.refresh_from_db()
    assert user.is_staff is True and superuser.is_active is True


def test_nobody_suspends_or_demotes_themselves(superuser: User) -> None:
    assert _patch(superuser, superuser, {"is_active": False}).status_code == 400
    assert _patch(superuser, superuser, {"is_staff": False}).status_code == 400
    superuser.refresh_from_db()
    assert superuser.is_active and superuser.is_staff


def test_the_detail_shows_one_user(superuser: User, make_user: Callable[..., User]) -> None:
    user = make_user(display_name="Lin")

    body = Client().get(f"/api/admin/users/{user.pk}", **bearer(superuser)).json()

    assert body["id"] == user.pk and body["display_name"] == "Lin"
    assert body["last_login"] is None


def test_plans_lists_every_plan_with_its_limits_stored_and_in_force(
    superuser: User, make_user: Callable[..., User], pro: Plan, settings: Any
) -> None:
    make_user(plan=pro)
    make_user(plan=pro)

    body = Client().get("/api/admin/plans", **bearer(superuser)).json()

    plans = {plan["name"]: plan for plan in body["results"]}
    assert body["next_cursor"] is None
    assert plans["pro"]["users"] == 2 and plans["pro"]["limits"]["priority"] == 7
    free = plans["free"]
    assert free["stored"]["messages_per_minute"] is None  # empty: the setting applies
    assert free["limits"]["messages_per_minute"] == settings.CHAT_RATE_PER_MINUTE
