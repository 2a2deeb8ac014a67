"""The one error family of the API and the helpers every JSON endpoint shares.

`ApiError(code, message)` maps to the websocket protocol's `error` message and to an HTTP
status, so REST views and the websocket consumer report failures the same way:
`{"error": {"code", "message", "fields"?}}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase

HTTP_STATUS_BY_CODE: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "too_large": 413,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "busy": 503,
}


class ApiError(Exception):
    """A failure the client caused or can act on. Never carries internal details."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        fields: dict[str, list[str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields
        self.retry_after = retry_after

    @property
    def http_status(self) -> int:
        return HTTP_STATUS_BY_CODE.get(self.code, 400)

    def as_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return {"error": body}


class NotFound(ApiError):
    def __init__(self, what: str = "resource") -> None:
        super().__init__("not_found", f"No such {what}.")


def error_response(error: ApiError) -> JsonResponse:
    response = JsonResponse(error.as_body(), status=error.http_status)
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    return response


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object body, or an `ApiError` saying exactly what is wrong with it."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError("too_large", "The request body is too large.") from None
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError("bad_request", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError("bad_request", "The request body must be a JSON object.")
    return data


View = Callable[..., HttpResponseBase]  # a streamed response (an export) is a view's answer too


def api_view(*methods: str) -> Callable[[View], View]:
    """Allow only `methods`, and turn `ApiError` into the JSON error response."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                response = error_response(ApiError("method_not_allowed", "Method not allowed."))
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except ApiError as error:
                return error_response(error)

        return wrapper

    return decorator
