"""REST views of the model registry and of the user's usage."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from accounts.decorators import login_required_api
from accounts.plans import plan_limits_for_user
from config.errors import ApiError, api_view
from inference.selectors import (
    auto_offered,
    model_list_allowed,
    usage_summary,
    usage_tokens_today,
)

logger = logging.getLogger(__name__)

USAGE_DEFAULT_DAYS = 30
USAGE_MAX_DAYS = 366


@api_view("GET")
@login_required_api
def model_list(request: HttpRequest) -> JsonResponse:
    """The enabled models the user's plan allows, with the plan's output cap, and whether
    `model: "auto"` is offered (`auto_offered`: two models or more, as `/v1/models` lists it)."""
    plan = plan_limits_for_user(user_id=int(request.user.pk or 0))
    cap = plan.max_output_tokens if plan is not None else None
    allowed = model_list_allowed(plan=plan)
    results = [
        {
            "name": model.name,
            "display_name": model.display_name,
            "description": model.description,
            "context_length": model.context_length,
            "max_output_tokens": min(model.max_output_tokens, cap or model.max_output_tokens),
            "default": model.is_default,
        }
        for model in allowed
    ]
    return JsonResponse(
        {"results": results, "next_cursor": None, "auto_offered": auto_offered(allowed)}
    )


def _days(request: HttpRequest) -> int:
    raw = request.GET.get("days", str(USAGE_DEFAULT_DAYS))
    problem = f"an integer from 1 to {USAGE_MAX_DAYS}"
    if not raw.isdigit() or not 1 <= int(raw) <= USAGE_MAX_DAYS:
        raise ApiError("bad_request", f"days: {problem}", fields={"days": [problem]})
    return int(raw)


def _messages_left(user_id: int, per_day: int) -> int | None:
    from chat import limits

    try:
        return limits.quota_left(owner_id=user_id, per_day=per_day)
    except Exception:  # Redis down: the usage page still shows the bill
        logger.warning("could not read the message quota of %s", user_id, exc_info=True)
        return None


def usage_report(request: HttpRequest, *, user_id: int) -> tuple[date, dict[str, Any]]:
    """The user's tokens and cost per day, per model and per source (the app's websocket, the
    OpenAI-compatible API) over `?days=` (default 30, UTC days), and what is left of today's
    quota: (the period's first day, the body of `GET /api/usage` less its per-key part, which
    the `api` app adds, since the keys are its own: `api.usage_api`). Raises `ApiError` for
    a bad `?days=`."""
    days = _days(request)
    since = timezone.now().date() - timedelta(days=days - 1)
    summary = usage_summary(user_id=user_id, since=since)
    plan = plan_limits_for_user(user_id=user_id)
    per_day = plan.daily_messages if plan is not None else settings.CHAT_DAILY_MESSAGE_QUOTA
    body = {
        "since": since.isoformat(),
        "days": days,
        **summary,
        "quota": {
            # The quota is in messages per day, the user's plan's (accounts.plans; 0: none).
            "daily_messages": per_day or None,
            "messages_left_today": _messages_left(user_id, per_day) if per_day else None,
            "tokens_today": usage_tokens_today(user_id=user_id),
        },
    }
    return since, body
