"""Plans in the accounts app: the seeded plans, every user on one (the configured default for
new users), and `GET /api/auth/me` showing the plan's limits and what is left of them, read
from real PostgreSQL and Redis."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from pytest_django import Settings

from accounts.models import Plan, User
from accounts.plans import plan_limits_for_user
from accounts.services import token_issue
from chat import limits

pytest_plugins = ["tests.chat.consumer_support"]


@pytest.mark.django_db
def test_the_migration_seeds_free_pro_and_team_with_free_on_the_settings(
    settings: Settings,
) -> None:
    assert set(Plan.objects.values_list("name", flat=True)) >= {"free", "pro", "team"}
    free = Plan.objects.get(name="free")
    assert free.messages_per_minute is None and free.concurrent_generations is None

    limits_in_force = plan_limits_for_user(user_id=User.objects.create_user("a@x.org").pk)

    assert limits_in_force is not None
    assert (
        limits_in_force.plan,
        limits_in_force.messages_per_minute,
        limits_in_force.daily_messages,
        limits_in_force.concurrent_generations,
        limits_in_force.priority,
    ) == (
        "free",
        settings.CHAT_RATE_PER_MINUTE,
        settings.CHAT_DAILY_MESSAGE_QUOTA,
        settings.CHAT_MAX_CONCURRENT_GENERATIONS,
        User.Priority.NORMAL,
    )
    pro = Plan.objects.get(name="pro")
    assert pro.messages_per_minute > settings.CHAT_RATE_PER_MINUTE
    assert pro.priority > free.priority


@pytest.mark.django_db
def test_new_users_get_the_configured_default_plan(settings: Settings) -> None:
    settings.ACCOUNTS_DEFAULT_PLAN = "team"

    user = User.objects.create_user("b@x.org")

    assert user.plan.name == "team"


@pytest.mark.django_db
def test_a_disabled_account_has_no_limits_in_force() -> None:
    user = User.objects.create_user("c@x.org", is_active=False)

    assert plan_limits_for_user(user_id=user.pk) is None


def test_me_shows_the_plan_its_limits_and_what_is_left(
    isolated_redis: str, transactional_db: Any
) -> None:
    plan = Plan.objects.create(
        name="starter",
        messages_per_minute=5,
        daily_messages=50,
        monthly_token_budget=1000,
        concurrent_generations=2,
        max_output_tokens=256,
        allowed_models=["smollm2-135m"],
        priority=6,
    )
    user = User.objects.create_user("d@x.org", plan=plan)
    raw_token, _ = token_issue(user=user)
    limits.message_rate_hit(owner_id=user.pk, per_minute=5, per_day=50)

    body = Client().get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {raw_token}").json()

    assert (body["id"], body["email"]) == (user.pk, "d@x.org")
    assert body["plan"] == {
        "name": "starter",
        "description": "",
        "limits": {
            "messages_per_minute": 5,
            "daily_messages": 50,
            "monthly_token_budget": 1000,
            "concurrent_generations": 2,
            "max_output_tokens": 256,
            "allowed_models": ["smollm2-135m"],
            "priority": 6,
        },
        "left": {
            "messages_this_minute": 4,
            "messages_today": 49,
            "tokens_this_month": 1000,
            "concurrent_generations": 2,
        },
    }


@pytest.mark.django_db
def test_staff_edit_a_plan_in_the_admin_and_move_a_user_to_it() -> None:
    admin = Client()
    admin.force_login(User.objects.create_superuser("root@example.org", "a sturdy passphrase 77"))
    user = User.objects.create_user("f@x.org")
    pro = Plan.objects.get(name="pro")

    listed = admin.get("/admin/accounts/plan/")
    edited = admin.post(
        f"/admin/accounts/plan/{pro.pk}/change/",
        {
            "name": "pro",
            "description": "",
            "messages_per_minute": "90",
            "daily_messages": "",
            "monthly_token_budget": "",
            "concurrent_generations": "4",
            "max_output_tokens": "",
            "allowed_models": "smollm2-135m,other-model",
            "priority": "7",
            "cached_answer_billing": "free",  # the form's select, as a browser sends it
        },
    )
    User.objects.filter(pk=user.pk).update(plan=pro)

    assert listed.status_code == 200 and b"free" in listed.content
    assert edited.status_code == 302, edited.content[:2000]
    limits_in_force = plan_limits_for_user(user_id=user.pk)
    assert limits_in_force is not None
    assert (
        limits_in_force.plan,
        limits_in_force.messages_per_minute,
        limits_in_force.concurrent_generations,
        limits_in_force.allowed_models,
    ) == ("pro", 90, 4, ("smollm2-135m", "other-model"))
