"""The staff REST API under `/api/admin/` (docs/api.md, "The staff API"). Thin views: check
the query or body, call a selector or service of the staff console (the admin's pages use the
same ones), shape the JSON. Staff only (`staff_required_api`); writes with a session need the
CSRF token, like every session write of the API.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone

from accounts.decorators import staff_required_api
from accounts.models import User
from chat.selectors import valid_id
from config.errors import ApiError, api_view, json_body
from inference.selectors import USAGE_GROUPS
from staff import selectors, services, stats

LIST_DEFAULT_LIMIT = 50
LIST_MAX_LIMIT = 100
USAGE_DEFAULT_DAYS = 30
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
CSV_COLUMNS = {
    "model": ["model"],
    "plan": ["plan"],
    "user": ["user_id", "email"],
    "day": ["date"],
}
TOTAL_COLUMNS = ["generations", "prompt_tokens", "completion_tokens", "total_tokens", "cost"]


class Query:
    """A request's query string, read parameter by parameter; anything malformed or unknown
    is a 400 that names the parameter."""

    def __init__(self, request: HttpRequest, *, allowed: set[str]) -> None:
        self.params = request.GET
        unknown = sorted(set(self.params) - allowed)
        if unknown:
            raise ApiError(
                "bad_request",
                f"Unknown parameters: {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}.",
                fields={name: ["unknown parameter"] for name in unknown},
            )
        for name in self.params:
            if len(self.params.getlist(name)) > 1:
                raise self.bad(name, "given more than once")

    @staticmethod
    def bad(name: str, problem: str) -> ApiError:
        return ApiError("bad_request", f"{name}: {problem}", fields={name: [problem]})

    def text(self, name: str, *, most: int = 512) -> str | None:
        value = self.params.get(name)
        if value is None or value == "":
            return None
        if len(value) > most:
            raise self.bad(name, f"at most {most} characters")
        return value

    def choice(self, name: str, choices: list[str], *, default: str | None = None) -> str | None:
        value = self.text(name)
        if value is None:
            return default
        if value not in choices:
            raise self.bad(name, f"one of {', '.join(choices)}")
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        if value.lower() not in BOOLEANS:
            raise self.bad(name, "true or false")
        return BOOLEANS[value.lower()]

    def limit(self) -> int:
        value = self.text("limit")
        if value is None:
            return LIST_DEFAULT_LIMIT
        if not re.fullmatch(r"[0-9]{1,4}", value) or not 0 < int(value) <= LIST_MAX_LIMIT:
            raise self.bad("limit", f"an integer from 1 to {LIST_MAX_LIMIT}")
        return int(value)

    def moment(self, name: str) -> datetime | None:
        """A date (`2026-12-01`: midnight UTC) or an ISO 8601 date and time with its offset."""
        value = self.text(name, most=40)
        if value is None:
            return None
        problem = "a date (YYYY-MM-DD) or an ISO 8601 time with its UTC offset"
        try:
            if len(value) == 10:
                return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise self.bad(name, problem) from None
        if timezone.is_naive(moment):
            raise self.bad(name, problem)
        return moment


def _page(results: list[Any], next_cursor: str | None) -> JsonResponse:
    return JsonResponse({"results": results, "next_cursor": next_cursor})


@api_view("GET")
@staff_required_api
def generations(request: HttpRequest) -> JsonResponse:
    """`GET /api/admin/generations?state=running|queued&cursor=&limit=`."""
    query = Query(request, allowed={"state", "cursor", "limit"})
    state = query.choice("state", sorted(selectors.GENERATION_STATES))
    results, next_cursor = selectors.generation_list(
        state=state, cursor=query.text("cursor"), limit=query.limit()
    )
    return _page(results, next_cursor)


@api_view("POST")
@staff_required_api
def generation_stop(request: HttpRequest, generation_id: str) -> JsonResponse:
    """`POST /api/admin/generations/{id}/stop`: the kill switch (202: the stop is on its way;
    the generation ends at the worker's next flush)."""
    if not valid_id(generation_id):
        raise ApiError("not_found", "No such generation.")
    assert isinstance(request.user, User)
    stopped = services.generation_stop(
        actor=request.user, generation_id=generation_id, request=request
    )
    return JsonResponse(stopped, status=202)


@api_view("GET")
@staff_required_api
def users(request: HttpRequest) -> JsonResponse:
    """`GET /api/admin/users?q=&is_active=&is_staff=&plan=&cursor=&limit=`."""
    query = Query(request, allowed={"q", "is_active", "is_staff", "plan", "cursor", "limit"})
    page, next_cursor = selectors.user_list(
        q=query.text("q", most=selectors.USER_SEARCH_MAX_CHARS),
        is_active=query.boolean("is_active"),
        is_staff=query.boolean("is_staff"),
        plan=query.text("plan", most=64),
        cursor=query.text("cursor"),
        limit=query.limit(),
    )
    return _page([selectors.user_json(user) for user in page], next_cursor)


@api_view("GET", "PATCH")
@staff_required_api
def user_detail(request: HttpRequest, user_id: int) -> JsonResponse:
    """`GET /api/admin/users/{id}`; `PATCH` with `plan`, `is_active` and/or `is_staff`."""
    if request.method == "GET":
        Query(request, allowed=set())
        return JsonResponse(selectors.user_json(selectors.user_get(user_id=user_id)))
    assert isinstance(request.user, User)
    user = services.user_update(
        actor=request.user, user_id=user_id, data=json_body(request), request=request
    )
    return JsonResponse(selectors.user_json(user))


@api_view("GET")
@staff_required_api
def plans(request: HttpRequest) -> JsonResponse:
    """`GET /api/admin/plans`: every plan (there are few: one page)."""
    Query(request, allowed=set())
    return _page(selectors.plan_list(), None)


def _csv_lines(rows: Iterator[dict[str, Any]], columns: list[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column) for column in columns])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


@api_view("GET")
@staff_required_api
def usage(request: HttpRequest) -> HttpResponseBase:
    """`GET /api/admin/usage?group_by=model|plan|user|day&since=&until=&format=json|csv`:
    generations, tokens and cost per group, of every user, since `since` (default: the last
    30 days, UTC) and before `until`. JSON is paginated; CSV is every row, streamed."""
    query = Query(request, allowed={"group_by", "since", "until", "format", "cursor", "limit"})
    group_by = query.choice("group_by", list(USAGE_GROUPS))
    if group_by is None:
        raise query.bad("group_by", f"required: one of {', '.join(USAGE_GROUPS)}")
    today = timezone.now().astimezone(UTC).date()
    default_since = datetime.combine(
        today - timedelta(days=USAGE_DEFAULT_DAYS - 1), time(), tzinfo=UTC
    )
    since = query.moment("since") or default_since
    until = query.moment("until")
    if until is not None and until <= since:
        raise query.bad("until", "must be after since")
    output = query.choice("format", ["json", "csv"], default="json")
    if output == "csv":
        if query.text("cursor") or query.text("limit"):
            raise query.bad("format", "csv is every row: no cursor or limit")
        columns = CSV_COLUMNS[group_by] + TOTAL_COLUMNS
        rows = selectors.usage_rows(group_by=group_by, since=since, until=until)
        response = StreamingHttpResponse(_csv_lines(rows, columns), content_type="text/csv")
        name = f"usage-by-{group_by}-since-{since.date().isoformat()}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response
    results, next_cursor = selectors.usage_page(
        group_by=group_by,
        since=since,
        until=until,
        cursor=query.text("cursor"),
        limit=query.limit(),
    )
    body = {
        "group_by": group_by,
        "since": since.isoformat(),
        "until": until.isoformat() if until else None,
        "results": results,
        "next_cursor": next_cursor,
    }
    return JsonResponse(body)


@api_view("GET")
@staff_required_api
def dashboard_stats(request: HttpRequest) -> JsonResponse:
    """`GET /api/admin/stats?hours=24`: what the dashboard draws (staff/stats.py), over the
    last `hours` hours (1 to 744; per hour up to 72, per day beyond)."""
    query = Query(request, allowed={"hours"})
    raw = query.text("hours")
    hours = 24
    if raw is not None:
        if not re.fullmatch(r"[0-9]{1,4}", raw) or not 0 < int(raw) <= stats.STATS_MAX_HOURS:
            raise query.bad("hours", f"an integer from 1 to {stats.STATS_MAX_HOURS}")
        hours = int(raw)
    return JsonResponse(stats.dashboard_stats(hours=hours))
