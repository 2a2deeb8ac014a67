"""A user's plan as limits in force: read live, with every empty limit filled from settings.

Admission (`chat.generation.admission`) reads these at every message, over the websocket,
REST and the OpenAI-compatible API alike, so a plan edited in the admin or a user moved to
another plan is enforced from their next message, in every process, without a restart.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet

from accounts.models import Plan, User
from config import batching

# A plan's own numeric limits, as stored (null: the deployment's setting), in the order the
# admin's list and the staff API show them.
PLAN_LIMIT_FIELDS = (
    "messages_per_minute",
    "daily_messages",
    "monthly_token_budget",
    "concurrent_generations",
    "max_output_tokens",
    "priority",
)


def plans_with_user_count(plans: QuerySet[Plan]) -> QuerySet[Plan]:
    """`plans`, each counting its users (read it with `plan_user_count`), in the same query."""
    return plans.annotate(user_total=Count("users"))


def plan_user_count(plan: Plan) -> int:
    """How many users a plan of `plans_with_user_count` has."""
    return int(getattr(plan, "user_total", 0))


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """The limits one user is held to now. 0 means no limit (as in the settings)."""

    plan: str
    messages_per_minute: int
    daily_messages: int
    monthly_token_budget: int
    concurrent_generations: int
    max_output_tokens: int | None  # None: the model's own
    allowed_models: tuple[str, ...]  # empty: every enabled model
    priority: int  # 0 (last) to 9 (first): the user's own when set, else the plan's

    def allows_model(self, name: str) -> bool:
        return not self.allowed_models or name in self.allowed_models

    def as_json(self) -> dict[str, Any]:
        limits = asdict(self)
        limits.pop("plan")
        limits["allowed_models"] = list(self.allowed_models)
        return limits


def _or_setting(value: int | None, setting: str) -> int:
    return int(getattr(settings, setting)) if value is None else value


def plan_limits(*, plan: Plan, user_priority: int | None = None) -> PlanLimits:
    """The limits of `plan`, its empty ones from settings; `user_priority` overrides its own."""
    return PlanLimits(
        plan=plan.name,
        messages_per_minute=_or_setting(plan.messages_per_minute, "CHAT_RATE_PER_MINUTE"),
        daily_messages=_or_setting(plan.daily_messages, "CHAT_DAILY_MESSAGE_QUOTA"),
        monthly_token_budget=_or_setting(plan.monthly_token_budget, "CHAT_MONTHLY_TOKEN_BUDGET"),
        concurrent_generations=_or_setting(
            plan.concurrent_generations, "CHAT_MAX_CONCURRENT_GENERATIONS"
        ),
        max_output_tokens=plan.max_output_tokens,
        allowed_models=tuple(plan.allowed_models or ()),
        priority=plan.priority if user_priority is None else user_priority,
    )


def plan_limits_for_user(*, user_id: int) -> PlanLimits | None:
    """The limits of an active user's plan, read now (one query, or the one that
    `plans_prefetched` started for this message); None for a disabled or unknown account."""
    prefetched = _prefetched(user_id)
    if prefetched is not _NOT_PREFETCHED:
        return prefetched  # type: ignore[return-value]
    user = User.objects.select_related("plan").filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    return plan_limits(plan=user.plan, user_priority=user.priority)


def plan_limits_for_users(user_ids: list[int]) -> dict[int, PlanLimits | None]:
    """`plan_limits_for_user` for several users in one query."""
    found = {
        user.pk: plan_limits(plan=user.plan, user_priority=user.priority)
        for user in User.objects.select_related("plan").filter(pk__in=user_ids, is_active=True)
    }
    return {user_id: found.get(user_id) for user_id in user_ids}


# A burst of messages (many users pressing Enter at once) is admitted one message after the
# other on the web process's one admission thread, and each read its sender's plan there: one
# PostgreSQL round trip each, slow when the engine keeps the cores busy (bench/pipeline.py at
# 16 streams: 40% of that thread's time). `plans_prefetched(user_id)` reads the plans of the
# senders waiting at that moment in one query on a pool thread, when the message arrives;
# the admission in that context takes its sender's from there.
PLAN_BATCH = 64
PLAN_PREFETCH_WAIT_SECONDS = 5.0
_PLANS_PREFETCHED: ContextVar[concurrent.futures.Future[dict[str, Any]] | None] = ContextVar(
    "plans_prefetched", default=None
)
_NOT_PREFETCHED = object()


def _plans_read(keys: list[str]) -> dict[str, PlanLimits | None]:
    from django.db import connection

    try:
        return {str(k): v for k, v in plan_limits_for_users([int(key) for key in keys]).items()}
    finally:
        connection.close()  # a pool thread: leave no connection behind


_plan_batchers: batching.PerLoop = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def plans_prefetched(user_id: int) -> AsyncIterator[None]:
    """Within the block, `plan_limits_for_user(user_id=user_id)` takes the plan read (or being
    read) with the other messages' of this moment, where that read succeeded; calls made from
    here through sync_to_async carry the context to their thread."""
    batcher = batching.for_running_loop(
        _plan_batchers,
        lambda: batching.Batcher(
            _plans_read, batch_size=PLAN_BATCH, span="accounts.plans", size_attribute="plans.users"
        ),
    )
    token = _PLANS_PREFETCHED.set(batcher.submit(str(user_id)))
    try:
        yield
    finally:
        _PLANS_PREFETCHED.reset(token)


def _prefetched(user_id: int) -> object:
    """The plan limits read ahead for `user_id` in this context, or `_NOT_PREFETCHED` (none,
    the read failed or is too slow, or this is an event loop's thread, which must not wait)."""
    future = _PLANS_PREFETCHED.get()
    if future is None:
        return _NOT_PREFETCHED
    with contextlib.suppress(RuntimeError):
        asyncio.get_running_loop()
        return _NOT_PREFETCHED
    try:
        read = future.result(timeout=PLAN_PREFETCH_WAIT_SECONDS)
    except Exception:
        return _NOT_PREFETCHED
    return read.get(str(user_id), _NOT_PREFETCHED)


# What is left of a plan's limits is counted where they are enforced, in `chat` (Redis windows,
# slots, usage records), which `accounts` may not import; chat registers its reader at start.
PlanLeftReader = Callable[[int, PlanLimits], dict[str, int | None]]
_left_readers: list[PlanLeftReader] = []


def plan_left_reader_register(reader: PlanLeftReader) -> None:
    if reader not in _left_readers:
        _left_readers.append(reader)


def plan_json(*, user: User) -> dict[str, Any]:
    """The user's plan for `GET /api/auth/me`: its name, its limits in force, what is left of
    them now (None: no limit, or not readable at the moment)."""
    limits = plan_limits(plan=user.plan, user_priority=user.priority)
    left: dict[str, int | None] = {}
    for reader in _left_readers:
        left.update(reader(int(user.pk), limits))
    return {
        "name": limits.plan,
        "description": user.plan.description,
        "limits": limits.as_json(),
        "left": left,
    }
