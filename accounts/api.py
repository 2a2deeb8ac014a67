"""JSON endpoints under /api/auth/: registration, browser sessions, bearer tokens.

CSRF, per endpoint (Django's CsrfViewMiddleware does the checking everywhere it applies):
- `login`, `logout`: always protected. They exist for the browser, which first calls `csrf`.
  (A login form without CSRF protection lets another site log a victim into its own account.)
- `register`: protected whenever the request carries our session or CSRF cookie, and only then
  does it log the new account into a session. A request without those cookies (a mobile app,
  or a cross-site form, since both cookies are SameSite=Lax) just creates the account and gets
  no session, so it cannot plant one in a browser: mobile clients go on to `POST token`.
- `token`: exempt. It reads no cookie and sets none, and another site cannot read the token in
  the response. `DELETE token` acts only on the bearer token in the Authorization header.
- Requests authenticated with a bearer token are exempted by `BearerTokenMiddleware`: a header
  is not an ambient credential that a browser attaches on its own.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.csrf import csrf_exempt, csrf_protect, ensure_csrf_cookie

from accounts.decorators import login_required_api
from accounts.middleware import bearer_token_from_header
from accounts.models import User
from accounts.services import token_issue, token_revoke, user_authenticate, user_register
from accounts.throttle import client_ip, registration_throttle
from config.errors import ApiError, api_view, error_response, json_body

# The only backend we log people in with; naming it avoids Django guessing when several exist.
_SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _user_json(user: User) -> dict[str, object]:
    return {"id": user.pk, "email": user.email, "display_name": user.display_name}


def _authenticate(request: HttpRequest, data: dict[str, Any]) -> User:
    email, password = data.get("email"), data.get("password")
    return user_authenticate(request=request, email=email, password=password)


def _sends_browser_cookies(request: HttpRequest) -> bool:
    return (
        settings.SESSION_COOKIE_NAME in request.COOKIES
        or settings.CSRF_COOKIE_NAME in request.COOKIES
    )


def _register(request: HttpRequest, *, start_session: bool) -> HttpResponse:
    registration_throttle(ip=client_ip(request.META))
    data = json_body(request)
    user = user_register(email=data.get("email", ""), password=data.get("password", ""))
    if start_session:
        login(request, user, backend=_SESSION_BACKEND)
    return JsonResponse({"id": user.pk, "email": user.email}, status=201)


@csrf_exempt  # CSRF is checked below, depending on the cookies (see the module docstring).
@api_view("POST")
def register(request: HttpRequest) -> HttpResponse:
    if _sends_browser_cookies(request):
        return csrf_protect(lambda req: _register(req, start_session=True))(request)
    return _register(request, start_session=False)


@api_view("POST")
def session_login(request: HttpRequest) -> HttpResponse:
    data = json_body(request)
    user = _authenticate(request, data)
    login(request, user, backend=_SESSION_BACKEND)
    return JsonResponse(_user_json(user))


@api_view("POST")
def session_logout(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse(status=204)


@api_view("GET")
@login_required_api
def me(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    return JsonResponse(_user_json(request.user))


@api_view("GET")
@ensure_csrf_cookie
def csrf(request: HttpRequest) -> HttpResponse:
    response = JsonResponse({"csrf_token": get_token(request)})
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt  # Neither reads nor sets cookies (see the module docstring).
@api_view("POST", "DELETE")
def token(request: HttpRequest) -> HttpResponse:
    if request.method == "DELETE":
        raw_token = bearer_token_from_header(request.headers.get("Authorization"))
        if raw_token is None or not token_revoke(raw_token=raw_token):
            # The middleware already refused unknown tokens; this is the no-header case (or a
            # token revoked by a concurrent request).
            raise ApiError("unauthorized", "Send the token to revoke as 'Authorization: Bearer'.")
        return HttpResponse(status=204)

    data = json_body(request)
    name = data.get("name", "")
    if not isinstance(name, str):
        raise ApiError("bad_request", "Invalid token name.", fields={"name": ["Must be a string."]})
    user = _authenticate(request, data)
    raw_token, record = token_issue(user=user, name=name)
    response = JsonResponse(
        {"token": raw_token, "expires_at": record.expires_at.isoformat()}, status=201
    )
    response["Cache-Control"] = "no-store"
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a JSON error for the API, Django's page for everything else (admin)."""
    if not request.path.startswith("/api/"):
        return html_csrf_failure(request, reason=reason)
    return error_response(
        ApiError(
            "forbidden",
            f"CSRF verification failed ({reason}). Get a token from GET /api/auth/csrf and send "
            "it in the X-CSRFToken header.",
        )
    )
