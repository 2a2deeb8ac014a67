"""`GET /api/admin/usage?group_by=model|plan|user|day&since=`: tokens, cost and generations
per group over every user's usage records (PostgreSQL), as JSON pages and as CSV."""

from __future__ import annotations

import csv
import importlib
import io
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.test import Client
from django.utils import timezone

from accounts.models import Plan, User
from inference.models import UsageRecord
from inference.services import usage_record_create
from tests.staff.conftest import bearer

pytestmark = pytest.mark.django_db(transaction=True)

NOW = timezone.now()


def _record(
    user: User | None, model: str, prompt: int, completion: int, cost: str, **extra: Any
) -> None:
    UsageRecord.objects.create(
        generation_id=uuid.uuid4().hex,
        user=user,
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=Decimal(cost),
        finish_reason="stop",
        # The plan at the time, as billing keeps it (inference.services.usage_record_create).
        plan=user.plan.name if user is not None else "",
        **extra,
    )


@pytest.fixture
def records(make_user: Callable[..., User]) -> dict[str, User]:
    pro, _ = Plan.objects.get_or_create(name="pro")
    alice, bob = make_user(plan=pro), make_user()
    _record(alice, "big", 100, 50, "1.50")
    _record(alice, "big", 10, 5, "0.15", created_at=NOW - timedelta(days=1))
    _record(bob, "small", 20, 20, "0.04")
    _record(bob, "small", 1000, 1000, "9.00", created_at=NOW - timedelta(days=40))  # too old
    return {"alice": alice, "bob": bob}


def _get(staff: User, query: str) -> Any:
    return Client().get(f"/api/admin/usage?{query}", **bearer(staff))


def test_grouped_by_model_highest_cost_first(superuser: User, records: dict[str, User]) -> None:
    body = _get(superuser, "group_by=model").json()

    assert body["group_by"] == "model" and body["next_cursor"] is None
    assert body["results"] == [
        {
            "model": "big",
            "generations": 2,
            "prompt_tokens": 110,
            "completion_tokens": 55,
            "total_tokens": 165,
            "cost": 1.65,
        },
        {
            "model": "small",
            "generations": 1,
            "prompt_tokens": 20,
            "completion_tokens": 20,
            "total_tokens": 40,
            "cost": 0.04,
        },
    ]


def test_grouped_by_user_and_by_plan(superuser: User, records: dict[str, User]) -> None:
    by_user = _get(superuser, "group_by=user").json()["results"]
    by_plan = _get(superuser, "group_by=plan").json()["results"]

    alice, bob = records["alice"], records["bob"]
    assert [(r["user_id"], r["email"], r["total_tokens"]) for r in by_user] == [
        (alice.pk, alice.email, 165),
        (bob.pk, bob.email, 40),
    ]
    assert [(r["plan"], r["generations"]) for r in by_plan] == [("pro", 2), ("free", 1)]


def test_a_bill_keeps_the_plan_it_was_made_under_when_its_user_changes_plans(
    superuser: User, make_user: Callable[..., User]
) -> None:
    pro, _ = Plan.objects.get_or_create(name="pro")
    user = make_user()  # on the default plan, free
    bill = {
        "user_id": user.pk,
        "model_name": "m",
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "finish_reason": "stop",
        "time_to_first_token_ms": None,
        "duration_ms": 10,
    }
    usage_record_create(generation_id=uuid.uuid4().hex, **bill)
    user.plan = pro
    user.save()
    usage_record_create(generation_id=uuid.uuid4().hex, **bill)
    usage_record_create(generation_id=uuid.uuid4().hex, **bill)

    by_plan = _get(superuser, "group_by=plan").json()["results"]
    stats = Client().get("/api/admin/stats?hours=1", **bearer(superuser)).json()

    assert [(r["plan"], r["generations"]) for r in by_plan] == [("pro", 2), ("free", 1)]
    assert sorted((r["plan"], r["generations"]) for r in stats["usage_by_plan"]) == [
        ("free", 1),
        ("pro", 2),
    ]


def test_bills_from_before_plans_were_kept_take_their_users_plan_now(
    make_user: Callable[..., User],
) -> None:
    pro, _ = Plan.objects.get_or_create(name="pro")
    user = make_user(plan=pro)
    _record(user, "m", 1, 1, "0")
    _record(None, "m", 1, 1, "0")
    UsageRecord.objects.update(plan="")  # as the rows were before the migration
    backfill = importlib.import_module("inference.migrations.0010_usage_record_keeps_its_plan")

    backfill.bills_before_take_their_users_plan_now(django_apps, None)

    assert sorted(UsageRecord.objects.values_list("plan", flat=True)) == ["", "pro"]


def test_grouped_by_day_newest_first_and_since_reaches_back(
    superuser: User, records: dict[str, User]
) -> None:
    since = (NOW - timedelta(days=60)).date().isoformat()

    days = _get(superuser, f"group_by=day&since={since}").json()["results"]

    assert [row["date"] for row in days] == [
        NOW.date().isoformat(),
        (NOW - timedelta(days=1)).date().isoformat(),
        (NOW - timedelta(days=40)).date().isoformat(),
    ]
    assert days[-1]["cost"] == 9.0


def test_until_bounds_the_window(superuser: User, records: dict[str, User]) -> None:
    today = datetime.combine(NOW.date(), datetime.min.time(), tzinfo=UTC).isoformat()

    rows = (
        Client()
        .get("/api/admin/usage", {"group_by": "model", "until": today}, **bearer(superuser))
        .json()["results"]
    )

    assert [(row["model"], row["generations"]) for row in rows] == [("big", 1)]


def test_pages_carry_their_query(superuser: User, records: dict[str, User]) -> None:
    first = _get(superuser, "group_by=model&limit=1").json()
    second = _get(superuser, f"group_by=model&limit=1&cursor={first['next_cursor']}").json()
    other_query = _get(superuser, f"group_by=user&limit=1&cursor={first['next_cursor']}")

    assert [r["model"] for r in first["results"] + second["results"]] == ["big", "small"]
    assert second["next_cursor"] is None
    assert other_query.status_code == 400


def test_csv_export_has_every_row(superuser: User, records: dict[str, User]) -> None:
    response = _get(superuser, "group_by=user&format=csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "user_id",
        "email",
        "generations",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cost",
    ]
    assert rows[1] == [
        str(records["alice"].pk),
        records["alice"].email,
        "2",
        "110",
        "55",
        "165",
        "1.65",
    ]
    assert len(rows) == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "group_by"),
        ("group_by=week", "group_by"),
        ("group_by=day&since=yesterday", "since"),
        ("group_by=day&since=2026-12-01T00:00:00", "since"),  # no offset: ambiguous
        ("group_by=day&since=2026-12-02&until=2026-12-01", "until"),
        ("group_by=day&format=xml", "format"),
        ("group_by=day&format=csv&limit=5", "format"),
        ("group_by=day&user=3", "user"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    superuser: User, query: str, field: str
) -> None:
    response = _get(superuser, query)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
