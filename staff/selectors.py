"""Reads of the staff console, shared by the staff API (`staff.api`) and the admin's pages:
live generations, users, plans and usage, across every owner. Callers are staff-only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from typing import Any

from django.core import signing
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Plan, User
from accounts.plans import (
    PLAN_LIMIT_FIELDS,
    plan_limits,
    plan_user_count,
    plans_with_user_count,
)
from chat import selectors as chat_selectors
from chat.generation import waiting
from chat.generation.record import QUEUED, STREAMING
from config.errors import ApiError
from inference.selectors import usage_group_rows, usage_grouped

# The API's names of a live generation's states, and the store's.
GENERATION_STATES = {"running": STREAMING, "queued": QUEUED}
USER_SEARCH_MAX_CHARS = 200
_USER_CURSOR_SALT = "staff.user_list"
_GENERATION_CURSOR_SALT = "staff.generation_list"
_USAGE_CURSOR_SALT = "staff.usage"


# --- live generations ---------------------------------------------------------------------------


def generation_json(document: dict[str, Any], *, email: str | None, position: int | None) -> dict:
    usage = document.get("usage") or {}
    created = document["created_at"]  # aware UTC (chat.store.document_out)
    heartbeat = document.get("heartbeat_at")
    state = "running" if document.get("state") == STREAMING else "queued"
    return {
        "generation_id": document["generation_id"],
        "state": state,
        "user": {"id": document["owner_id"], "email": email},
        "model": document.get("model"),
        "conversation_id": document.get("conversation_id"),
        "message_id": document["id"],
        "created_at": created.isoformat(),
        "age_seconds": round((timezone.now() - created).total_seconds(), 1),
        "tokens": {
            "prompt": int(usage.get("prompt_tokens") or 0),
            "completion": int(usage.get("completion_tokens") or 0),
        },
        "seq": int(document.get("seq") or 0),
        "worker": document.get("worker"),
        "queue": document.get("queue"),
        "queue_position": position,
        "heartbeat_at": heartbeat.isoformat() if heartbeat else None,
    }


def generation_list(
    *, state: str | None, cursor: str | None, limit: int
) -> tuple[list[dict], str | None]:
    """One page of live generations (newest first): running (streaming on a worker), queued
    (stored, waiting for one), or both; with their users' emails and, for queued ones, their
    place in their model's queue (Redis)."""
    states = (GENERATION_STATES[state],) if state else (STREAMING, QUEUED)
    before = None
    if cursor:
        data = chat_selectors.cursor_data(cursor, _GENERATION_CURSOR_SALT)
        try:
            before = (datetime.fromisoformat(data["c"]), str(data["i"]))
        except (KeyError, TypeError, ValueError):
            raise chat_selectors.INVALID_CURSOR from None
    documents = chat_selectors.generation_list_live(states=states, limit=limit + 1, before=before)
    page = documents[:limit]
    emails = dict(
        User.objects.filter(pk__in={d["owner_id"] for d in page}).values_list("pk", "email")
    )
    queued = [(d.get("queue") or "", d["generation_id"]) for d in page if d["state"] == QUEUED]
    positions = dict(zip([g for _, g in queued], waiting.positions(entries=queued), strict=True))
    results = [
        generation_json(
            d, email=emails.get(d["owner_id"]), position=positions.get(d["generation_id"])
        )
        for d in page
    ]
    next_cursor = None
    if len(documents) > limit:
        last = page[-1]
        next_cursor = signing.dumps(
            {"c": last["created_at"].isoformat(), "i": last["id"]}, salt=_GENERATION_CURSOR_SALT
        )
    return results, next_cursor


# --- users ----------------------------------------------------------------------------------------


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.pk,
        "email": user.email,
        "display_name": user.display_name,
        "plan": user.plan.name,
        "priority": user.priority,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "date_joined": user.date_joined.isoformat(),
        "last_login": user.last_login.isoformat() if user.last_login else None,
    }


def user_list(
    *,
    q: str | None,
    cursor: str | None,
    limit: int,
    is_active: bool | None = None,
    is_staff: bool | None = None,
    plan: str | None = None,
) -> tuple[list[User], str | None]:
    """One page of users, newest account first: `q` in the email or display name
    (case-insensitive, literal), and the given status and plan."""
    users: QuerySet[User] = User.objects.select_related("plan").order_by("-pk")
    if q:
        users = users.filter(Q(email__icontains=q) | Q(display_name__icontains=q))
    if is_active is not None:
        users = users.filter(is_active=is_active)
    if is_staff is not None:
        users = users.filter(is_staff=is_staff)
    if plan is not None:
        users = users.filter(plan__name=plan)
    if cursor:
        data = chat_selectors.cursor_data(cursor, _USER_CURSOR_SALT)
        last = data.get("i")
        if isinstance(last, bool) or not isinstance(last, int):
            raise chat_selectors.INVALID_CURSOR
        users = users.filter(pk__lt=last)
    found = list(users[: limit + 1])
    page = found[:limit]
    following = (
        signing.dumps({"i": page[-1].pk}, salt=_USER_CURSOR_SALT) if len(found) > limit else None
    )
    return page, following


def user_get(*, user_id: int) -> User:
    user = User.objects.select_related("plan").filter(pk=user_id).first()
    if user is None:
        raise ApiError("not_found", "No such user.")
    return user


# --- plans ----------------------------------------------------------------------------------------


def plan_json(plan: Plan, *, users: int) -> dict[str, Any]:
    stored = {name: getattr(plan, name) for name in PLAN_LIMIT_FIELDS}
    return {
        "id": plan.pk,
        "name": plan.name,
        "description": plan.description,
        # As stored (null: the deployment's setting) and as enforced (settings filled in).
        "stored": {**stored, "allowed_models": list(plan.allowed_models)},
        "limits": plan_limits(plan=plan).as_json(),
        "users": users,
    }


def plan_list() -> list[dict[str, Any]]:
    """Every plan with its limits (stored and in force) and how many users it has."""
    plans = plans_with_user_count(Plan.objects.order_by("priority", "name"))
    return [plan_json(plan, users=plan_user_count(plan)) for plan in plans]


# --- usage ----------------------------------------------------------------------------------------


def usage_rows(
    *, group_by: str, since: datetime, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Every group's row (the CSV export streams these)."""
    grouped = usage_grouped(group_by=group_by, since=since, until=until)
    return usage_group_rows(grouped.iterator(chunk_size=500), group_by=group_by)


def usage_page(
    *, group_by: str, since: datetime, until: datetime | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `usage_rows`. The cursor holds the offset and the query it belongs to."""
    query = [group_by, since.isoformat(), until.isoformat() if until else None]
    offset = 0
    if cursor:
        data = chat_selectors.cursor_data(cursor, _USAGE_CURSOR_SALT)
        found = data.get("o")
        if data.get("q") != query or isinstance(found, bool) or not isinstance(found, int):
            raise chat_selectors.INVALID_CURSOR
        offset = found
    grouped = usage_grouped(group_by=group_by, since=since, until=until)
    rows = list(usage_group_rows(iter(grouped[offset : offset + limit + 1]), group_by=group_by))
    following = None
    if len(rows) > limit:
        following = signing.dumps({"o": offset + limit, "q": query}, salt=_USAGE_CURSOR_SALT)
    return list(islice(rows, limit)), following
