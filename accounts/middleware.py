"""HTTP authentication by bearer token (mobile and API clients)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from accounts.models import TOKEN_MARKER
from accounts.selectors import user_for_token
from config.errors import ApiError, error_response


def bearer_token_from_header(value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, else None."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def unauthorized_response(message: str) -> HttpResponse:
    response = error_response(ApiError("unauthorized", message))
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


# Where a bearer token is a credential: the JSON API and the OpenAI-compatible API. (The
# websocket reads its own credentials in accounts.ws_auth.) Anywhere else, the admin above all,
# the header is ignored: the admin is for people with a session, its second factor and its CSRF
# checks, and a leaked API token must not open it (issue 15, finding 8).
BEARER_PATH_PREFIXES = ("/api/", "/v1/")


def bearer_applies(path: str) -> bool:
    return path.startswith(BEARER_PATH_PREFIXES)


class BearerTokenMiddleware:
    """Authenticate `request.user` from `Authorization: Bearer <token>` under /api/ and /v1/.

    Goes right after AuthenticationMiddleware, so a bearer token overrides any session. A request
    with a valid token is exempt from CSRF: the header is not an ambient credential (a browser
    never attaches it by itself), so another site cannot forge such a request. An unknown,
    expired or revoked token gets 401 at once. Explicit credentials that fail never fall back
    to the session cookie. On other paths the header is not read at all.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        header = request.headers.get("Authorization")
        if not bearer_applies(request.path):
            return self.get_response(request)
        if header is None or not header.strip().lower().startswith("bearer"):
            return self.get_response(request)

        raw_token = bearer_token_from_header(header)
        if request.path.startswith("/v1/") and not (raw_token or "").startswith(TOKEN_MARKER):
            # An API key (or anything else that is no account token): the /v1/ views check it
            # themselves and answer in OpenAI's error format.
            return self.get_response(request)
        user = user_for_token(raw_token=raw_token) if raw_token else None
        if user is None:
            return unauthorized_response("The bearer token is invalid, expired or revoked.")

        request.user = user
        # Read by views that treat a script's token differently from a person's session (the
        # staff API: accounts.decorators.staff_required_api).
        request.bearer_authenticated = True  # type: ignore[attr-defined]

        async def auser() -> object:
            return user

        request.auser = auser  # type: ignore[assignment]
        # Read by CsrfViewMiddleware.process_view, which runs after every middleware's request
        # phase; this is how Django's test client and DRF exempt non-cookie authentication.
        request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
        return self.get_response(request)
