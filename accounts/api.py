"""JSON endpoints under /api/auth/: registration, browser sessions, bearer tokens.

CSRF, per endpoint (Django's CsrfViewMiddleware does the checking everywhere it applies):
- `login`, `logout`: always protected. They exist for the browser, which first calls `csrf`.
  (A login form without CSRF protection lets another site log a victim into its own account.)
- `register`: exempt. It reads no cookie and starts no session (it answers alike for a new and
  a taken address, so it cannot sign anyone in); the browser app and mobile clients go on to
  `login` or `token`. `verify-email` is the link in an email: a GET that changes one flag.
- `token`: exempt. It reads no cookie and sets none, and another site cannot read the token in
  the response. `DELETE token` acts only on the bearer token in the Authorization header.
- Requests authenticated with a bearer token are exempted by `BearerTokenMiddleware`: a header
  is not an ambient credential that a browser attaches on its own.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.middleware.csrf import get_token
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie
from django.views.decorators.http import require_safe

from accounts.decorators import login_required_api
from accounts.middleware import bearer_token_from_header
from accounts.models import User
from accounts.plans import plan_json
from accounts.services import token_issue, token_revoke, user_authenticate, user_register
from accounts.throttle import client_ip, registration_throttle
from accounts.verification import LinkBuilder, email_verify
from config.errors import ApiError, api_view, error_response, json_body

# The only backend we log people in with; naming it avoids Django guessing when several exist.
_SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _user_json(user: User) -> dict[str, object]:
    return {"id": user.pk, "email": user.email, "display_name": user.display_name}


def _authenticate(request: HttpRequest, data: dict[str, Any]) -> User:
    email, password = data.get("email"), data.get("password")
    return user_authenticate(request=request, email=email, password=password)


def _link_builder(request: HttpRequest) -> LinkBuilder:
    """Absolute links for registration's emails, on the host this request came to (one of
    ALLOWED_HOSTS): the verification link for a token, the app's login page for None."""

    def link(token: str | None) -> str:
        if token is None:
            return request.build_absolute_uri("/login")
        return request.build_absolute_uri(f"/api/auth/verify-email?{urlencode({'token': token})}")

    return link


@csrf_exempt  # Reads no cookie and starts no session (see the module docstring).
@api_view("POST")
def register(request: HttpRequest) -> HttpResponse:
    """201 `{"email", "email_verification_required"}` for a new and a taken address alike; 400
    with `fields` for invalid input; 429 past REGISTRATION_IP_LIMIT."""
    registration_throttle(ip=client_ip(request.META))
    data = json_body(request)
    email = user_register(
        email=data.get("email", ""),
        password=data.get("password", ""),
        link=_link_builder(request),
    )
    body = {"email": email, "email_verification_required": settings.ACCOUNTS_VERIFY_EMAIL}
    return JsonResponse(body, status=201)


@require_safe
def verify_email(request: HttpRequest) -> HttpResponse:
    """The emailed link: verify the address, then go to the app's login page, which says how it
    went (`?verified=1`, or `?verified=0` for a link that is invalid or expired)."""
    try:
        email_verify(token=request.GET.get("token", ""))
    except ApiError:
        return HttpResponseRedirect("/login?verified=0")
    return HttpResponseRedirect("/login?verified=1")


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
    """The user, with their plan: its limits and what is left of them."""
    assert isinstance(request.user, User)
    return JsonResponse({**_user_json(request.user), "plan": plan_json(user=request.user)})


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
