"""`GET /api/usage`: the user's bills over a period (`inference.api.usage_report`: per day,
model and source, and today's quota) and, for the same period, per API key. It is served here
because the keys are this app's, and `inference` does not import `api`."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from accounts.decorators import login_required_api
from api.selectors import USAGE_KEYS_MAX, api_key_usage_since
from config.errors import api_view
from inference.api import usage_report


@api_view("GET")
@login_required_api
def usage(request: HttpRequest) -> JsonResponse:
    user_id = int(request.user.pk or 0)  # authenticated: login_required_api
    since, body = usage_report(request, user_id=user_id)
    per_key, truncated = api_key_usage_since(user_id=user_id, since=since, limit=USAGE_KEYS_MAX)
    return JsonResponse({**body, "per_key": per_key, "per_key_truncated": truncated})
