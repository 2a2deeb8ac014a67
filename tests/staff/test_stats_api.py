"""`GET /api/admin/stats`: the dashboard's numbers from PostgreSQL (usage records, moderation
events), the store (live generations) and Redis (queue depths)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client

from accounts.models import Plan, User
from chat.generation import waiting
from inference.models import LanguageModel, UsageRecord
from moderation.models import ModerationEvent
from tests.staff.conftest import bearer

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = f"inference.stats-test-{uuid.uuid4().hex[:8]}"


def _bill(user: User, model: str, *, ttft: int, duration: int, completion: int) -> None:
    UsageRecord.objects.create(
        generation_id=uuid.uuid4().hex,
        user=user,
        model=model,
        prompt_tokens=10,
        completion_tokens=completion,
        cost=Decimal("0.01"),
        time_to_first_token_ms=ttft,
        duration_ms=duration,
        finish_reason="stop",
        plan=user.plan.name,  # as billing keeps it (inference.services.usage_record_create)
    )


@pytest.fixture
def queue() -> Any:
    LanguageModel.objects.create(name="stats-m", display_name="M", weights="w", queue=QUEUE)
    yield QUEUE
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(
        f"chat:waiting:{QUEUE}", f"chat:waiting-since:{QUEUE}", f"chat:waiting-arrivals:{QUEUE}"
    )
    client.close()


def test_the_dashboard_numbers(superuser: User, make_user: Callable[..., User], queue: str) -> None:
    pro, _ = Plan.objects.get_or_create(name="pro")
    alice, bob = make_user(plan=pro), make_user()
    # Time to first token 100, 200, 300 ms; 20 tokens in (1100 - ttft) ms after the first.
    for ttft in (100, 200, 300):
        _bill(alice, "m1", ttft=ttft, duration=1000 + ttft, completion=20)
    _bill(bob, "m2", ttft=50, duration=50, completion=1)  # no decode time: not in the speeds
    ModerationEvent.objects.create(
        direction="input", text="x", categories=["violence", "harassment"], action="block",
        check_name="rules",
    )  # fmt: skip
    waiting.add(queue=queue, generation_id="g1", priority=5)
    waiting.add(queue=queue, generation_id="g2", priority=5)

    body = Client().get("/api/admin/stats?hours=6", **bearer(superuser)).json()

    assert body["window"]["hours"] == 6 and body["window"]["bucket"] == "hour"
    assert [(r["model"], r["generations"], r["tokens"]) for r in body["usage_by_model"]] == [
        ("m1", 3, 90),
        ("m2", 1, 11),
    ]
    assert {r["plan"]: r["generations"] for r in body["usage_by_plan"]} == {"pro": 3, "free": 1}
    assert [row["email"] for row in body["top_users"]] == [alice.email, bob.email]
    assert body["latency"] == [
        {
            "model": "m1",
            "generations": 3,
            "ttft_ms_p50": 200.0,
            "ttft_ms_p95": 290.0,
            "tokens_per_second_p50": 20.0,
            "tokens_per_second_p95": 20.0,
        }
    ]
    assert {"model": "stats-m", "queue": queue, "waiting": 2} in body["queues"]
    assert sorted((r["category"], r["events"]) for r in body["moderation"]) == [
        ("harassment", 1),
        ("violence", 1),
    ]
    assert body["live"] == {"running": 0, "queued": 0}

    def hour(moment: Any) -> str:
        return str(moment.replace(minute=0, second=0, microsecond=0).isoformat())

    assert body["moderation"][0]["bucket"] == hour(ModerationEvent.objects.get().created_at)
    billed_at = UsageRecord.objects.filter(model="m1").earliest("created_at").created_at
    assert body["usage_by_model"][0]["bucket"] == hour(billed_at)


def test_long_windows_are_drawn_per_day(superuser: User) -> None:
    body = Client().get("/api/admin/stats?hours=168", **bearer(superuser)).json()

    assert body["window"]["bucket"] == "day"


@pytest.mark.parametrize("query", ["hours=0", "hours=745", "hours=x", "days=2"])
def test_bad_parameters_are_400(superuser: User, query: str) -> None:
    response = Client().get(f"/api/admin/stats?{query}", **bearer(superuser))

    assert response.status_code == 400


def test_not_for_users_who_are_not_staff(make_user: Callable[..., User]) -> None:
    assert Client().get("/api/admin/stats", **bearer(make_user())).status_code == 403
