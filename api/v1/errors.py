"""Errors in OpenAI's format: `{"error": {"message", "type", "param", "code"}}`, with the status
an OpenAI client expects (its SDK picks the exception class from the status)."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from config.errors import ApiError

INVALID_REQUEST = "invalid_request_error"


class OpenAIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retry_after = retry_after

    def as_body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> OpenAIError:
    """400: a request the client must change."""
    return OpenAIError(400, message, param=param, code=code)


def model_not_found(name: str, *, reason: str = "") -> OpenAIError:
    """404 `model_not_found`, OpenAI's answer both for a model that does not exist and for one
    the caller may not use: a model outside the owner's plan is neither listed by
    `/v1/models` nor usable, so to an API client it does not exist. `reason` says why."""
    message = f"The model '{name}' does not exist or you do not have access to it."
    return OpenAIError(
        404, f"{message} {reason}" if reason else message, param="model", code="model_not_found"
    )


def error_response(error: OpenAIError) -> JsonResponse:
    response = JsonResponse(error.as_body(), status=error.status)
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="v1"'
    return response


def from_api_error(error: ApiError) -> OpenAIError:
    """The platform's error family (`config.errors.ApiError`, `chat.errors.ChatError`) as
    OpenAI's. The admission path raises these for the websocket and the API alike."""
    code, message = error.code, error.message
    param = next(iter(error.fields), None) if error.fields else None
    if code == "not_found" or (code == "forbidden" and param == "model"):
        # No such model, or (forbidden) one outside the user's plan, which admission checks
        # again in case the plan changed since the view's check: 404 for both, as OpenAI
        # answers, and as `/v1/models` does not list a model outside the plan.
        return OpenAIError(404, message, param="model", code="model_not_found")
    if code == "rate_limited":
        return OpenAIError(
            429, message, type="requests", code="rate_limit_exceeded", retry_after=error.retry_after
        )
    if code == "quota_exceeded":
        return OpenAIError(
            429,
            message,
            type="insufficient_quota",
            code="insufficient_quota",
            retry_after=error.retry_after,
        )
    if code == "busy":
        return OpenAIError(
            503, message, type="server_error", code="overloaded", retry_after=error.retry_after
        )
    if code == "forbidden":
        return OpenAIError(403, message, type="permission_error", code="account_disabled")
    if code == "unauthorized":
        return OpenAIError(401, message, code="invalid_api_key")
    if code == "too_large":
        return OpenAIError(400, message, param=param or "messages", code="string_above_max_length")
    return OpenAIError(400, message, param=param, code=None)
