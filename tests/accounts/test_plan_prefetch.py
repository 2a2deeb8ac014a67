"""A burst's plans read ahead of the admission thread (`accounts.plans.plans_prefetched`), on
real PostgreSQL: one query for the senders waiting at that moment, the admission's own read
taken from it, and its own query where the read ahead failed."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import plans
from accounts.models import Plan, User


def _read_in_thread(user_id: int) -> tuple[Any, int]:
    """The plan limits as the admission thread reads them, and the queries that read made."""
    with CaptureQueriesContext(connection) as queries:
        limits = plans.plan_limits_for_user(user_id=user_id)
    return limits, len(queries)


@pytest.fixture
def fresh_batchers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plans, "_plan_batchers", weakref.WeakKeyDictionary())


@pytest.mark.django_db(transaction=True)
async def test_a_burst_reads_its_senders_plans_in_a_few_queries_and_admission_in_none(
    fresh_batchers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its own plan: a transactional test before this one may have flushed the seeded ones.
    pro, _ = await Plan.objects.aget_or_create(name="prefetch-pro", defaults={"priority": 2})
    users = [await sync_to_async(User.objects.create_user)(f"p{i}@x.org") for i in range(12)]
    users[3].plan = pro
    await users[3].asave()
    disabled = await sync_to_async(User.objects.create_user)("off@x.org", is_active=False)
    batches: list[list[str]] = []
    read = plans._plans_read

    def counted(keys: list[str]) -> dict[str, Any]:
        batches.append(keys)
        return read(keys)

    monkeypatch.setattr(plans, "_plans_read", counted)

    async def one(user_id: int) -> tuple[Any, int]:
        async with plans.plans_prefetched(user_id):
            return await sync_to_async(_read_in_thread)(user_id)

    results = await asyncio.gather(*(one(user.pk) for user in [*users, disabled]))

    # The first sender's read starts at once; the others arriving meanwhile share the next.
    assert len(batches) <= 3 and sum(map(len, batches)) == 13
    assert [count for _, count in results] == [0] * 13  # no query on the admission thread
    limits = [limit for limit, _ in results]
    default = settings.ACCOUNTS_DEFAULT_PLAN
    assert limits[3].plan == "prefetch-pro" and {limit.plan for limit in limits[:3]} == {default}
    assert limits[-1] is None  # a disabled account has no limits, read ahead or not


@pytest.mark.django_db(transaction=True)
async def test_a_failed_read_ahead_leaves_admission_to_read_the_plan_itself(
    fresh_batchers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await sync_to_async(User.objects.create_user)("f@x.org")

    def broken(keys: list[str]) -> dict[str, Any]:
        raise RuntimeError("PostgreSQL went away")

    monkeypatch.setattr(plans, "_plans_read", broken)

    async with plans.plans_prefetched(user.pk):
        limits, queries = await sync_to_async(_read_in_thread)(user.pk)

    assert limits.plan == settings.ACCOUNTS_DEFAULT_PLAN and queries == 1


@pytest.mark.django_db(transaction=True)
async def test_outside_the_block_the_plan_is_read_as_before(fresh_batchers: None) -> None:
    user = await sync_to_async(User.objects.create_user)("o@x.org")
    async with plans.plans_prefetched(user.pk):
        pass

    limits, queries = await sync_to_async(_read_in_thread)(user.pk)

    assert limits.plan == settings.ACCOUNTS_DEFAULT_PLAN and queries == 1
