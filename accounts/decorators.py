"""View decorators that other apps' REST views use."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from accounts.middleware import unauthorized_response
from config.errors import ApiError, error_response


def login_required_api(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """401 `{"error": {"code": "unauthorized", ...}}` for anonymous requests (no redirect)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return unauthorized_response("Authentication required: sign in or send a bearer token.")
        return view(request, *args, **kwargs)

    return wrapper


def staff_required_api(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """The staff API's gate: 401 for anonymous requests, 403 for anyone who is not active
    staff. A staff bearer token (a script) is enough; a session must pass the admin's own
    check as well (`ChatAdminSite.has_permission`: the second factor, when the person has a
    device or ADMIN_REQUIRE_2FA is on), so that a session the admin would refuse cannot reach
    the same actions through the API."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user: Any = request.user
        if not user.is_authenticated:
            return unauthorized_response("Authentication required: sign in or send a bearer token.")
        if not (user.is_active and user.is_staff):
            return error_response(ApiError("forbidden", "This API is for staff."))
        if not getattr(request, "bearer_authenticated", False) and not admin.site.has_permission(
            request
        ):
            return error_response(
                ApiError(
                    "forbidden",
                    "Sign in to the admin with your second factor to use this API with a "
                    "session, or send a staff bearer token.",
                )
            )
        return view(request, *args, **kwargs)

    return wrapper
