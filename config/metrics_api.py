"""`GET /metrics`: the Prometheus text of every process (`config/metrics.py`), for the
configured METRICS_TOKEN or a staff member's bearer token."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from accounts.middleware import bearer_token_from_header
from accounts.selectors import user_for_token
from config.errors import ApiError, error_response
from config.metrics import exposition


def _denied(code: str, message: str) -> HttpResponse:
    response = error_response(ApiError(code, message))
    if code == "unauthorized":
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`: for `Authorization: Bearer <METRICS_TOKEN>` or a staff member's
    bearer token; 401 without a valid credential, 403 for a user who is not staff."""
    raw = bearer_token_from_header(request.headers.get("Authorization"))
    if raw is None:
        return _denied(
            "unauthorized", "Send METRICS_TOKEN or a staff bearer token as 'Authorization: Bearer'."
        )
    configured = settings.METRICS_TOKEN
    if not (configured and hmac.compare_digest(raw.encode(), configured.encode())):
        user = user_for_token(raw_token=raw)
        if user is None:
            return _denied("unauthorized", "Invalid or expired token.")
        if not user.is_staff:
            return _denied("forbidden", "Metrics are for staff.")
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
