"""View decorators that other apps' REST views use."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from accounts.middleware import unauthorized_response


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
