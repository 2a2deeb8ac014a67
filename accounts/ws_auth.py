"""Websocket authentication (PROTOCOL.md, "Authentication"), as ASGI middleware.

Credentials, in this order; the first one present decides, and a failing one never falls back
to the next:
1. `Authorization: Bearer <token>` header;
2. the subprotocol pair `chat.v1, bearer.<token>` (for clients that cannot set headers);
3. the Django session cookie, only from an allowed `Origin` (cross-site websocket hijacking:
   browsers send cookies on cross-site websocket handshakes and websockets have no CORS).
The query string is never read: URLs end up in logs and proxies.

The middleware decides, the consumer acts: it sets `scope["user"]`, `scope["auth_method"]`,
`scope["auth_close_code"]`, `scope["accept_subprotocol"]` and `scope["auth_credential"]`, and
the consumer calls `accept_or_reject(self)` first thing in `connect()`. Rejections are "accept,
then close with 4401/4403" because a handshake refused with HTTP 403 shows every client the
same 1006 code.
"""

from __future__ import annotations

import functools
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host

from accounts.middleware import bearer_token_from_header
from accounts.selectors import auser_for_token
from accounts.signals import credential_id

SUBPROTOCOL = "chat.v1"
BEARER_SUBPROTOCOL_PREFIX = "bearer."
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403


def _headers(scope: dict[str, Any], name: bytes) -> list[str]:
    return [
        value.decode("latin-1") for key, value in scope.get("headers", []) if key.lower() == name
    ]


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    values = _headers(scope, name)
    return values[0] if len(values) == 1 else None  # Repeated: ambiguous, trust neither copy.


def origin_is_allowed(origin: str | None, *, host: str | None, secure: bool) -> bool:
    """True when `origin` may use the session cookie on a websocket.

    Allowed: an exact entry of CSRF_TRUSTED_ORIGINS (or its `scheme://*.domain` form, as Django's
    CSRF check reads that setting), or the page's own origin: same scheme family (https for wss),
    same host and port as the handshake's Host header, with that host in ALLOWED_HOSTS. A
    missing or "null" Origin is never allowed.
    """
    if not origin or origin == "null":
        return False
    try:
        parts = urlsplit(origin.lower())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path:
        return False
    normalized = f"{parts.scheme}://{parts.netloc}"

    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        trusted = trusted.lower().rstrip("/")
        if normalized == trusted:
            return True
        scheme, _, netloc = trusted.partition("://")
        if netloc.startswith("*.") and parts.scheme == scheme:
            suffix = netloc[1:]  # ".example.com"
            if parts.netloc.endswith(suffix):
                return True

    if host:
        domain, _port = split_domain_port(host.lower())
        own_origin = f"{'https' if secure else 'http'}://{host.lower()}"
        if domain and normalized == own_origin and validate_host(domain, settings.ALLOWED_HOSTS):
            return True
    return False


def _presented(scope: dict[str, Any], offered: list[str]) -> tuple[str, str] | None:
    """The credential that decides (the module docstring's order): ("bearer", token) or
    ("session", session key); None when there is none or an unusable one (a malformed
    Authorization header, several bearer subprotocols), which never falls back to the next."""
    authorizations = _headers(scope, b"authorization")
    bearer_protocols = [p for p in offered if p.startswith(BEARER_SUBPROTOCOL_PREFIX)]
    if authorizations:
        token = bearer_token_from_header(authorizations[0]) if len(authorizations) == 1 else None
        return ("bearer", token) if token is not None else None
    if bearer_protocols:
        if len(bearer_protocols) != 1 or SUBPROTOCOL not in offered:
            return None
        return "bearer", bearer_protocols[0][len(BEARER_SUBPROTOCOL_PREFIX) :]
    cookie_header = _header(scope, b"cookie")
    cookies = parse_cookie(cookie_header) if cookie_header else {}
    session_key = cookies.get(settings.SESSION_COOKIE_NAME)
    return ("session", session_key) if session_key else None


def presented_credential(scope: dict[str, Any]) -> str | None:
    """The name (`credential_id`) of the credential a handshake presents, read without the
    database: what the connection rate per credential counts (chat.limits)."""
    offered = [str(protocol) for protocol in scope.get("subprotocols") or []]
    presented = _presented(scope, offered)
    return credential_id(*presented) if presented is not None else None


# Off Channels' one shared thread: a storm of connections authenticates on the pool's threads,
# whose database round trips overlap; the connection rate per credential and per address
# (chat.limits.connect_hit) bounds what one client can make it do.
@functools.partial(database_sync_to_async, thread_sensitive=False)
def _session_user(session_key: str) -> Any:
    engine = import_module(settings.SESSION_ENGINE)
    session = engine.SessionStore(session_key)
    # Django's own get_user: it checks the session's password hash (a password change logs
    # every session out) and that the account is active. It only reads `request.session`.
    return get_user(SimpleNamespace(session=session))  # type: ignore[arg-type]


async def authenticate_websocket(scope: dict[str, Any]) -> dict[str, Any]:
    """The five auth keys for a websocket scope (see the module docstring)."""
    offered = [str(protocol) for protocol in scope.get("subprotocols") or []]
    result: dict[str, Any] = {
        "user": AnonymousUser(),
        "auth_method": None,
        "auth_close_code": CLOSE_UNAUTHENTICATED,
        # Answer chat.v1 whenever it was offered, even to reject: a browser fails a handshake
        # whose answer lacks an offered subprotocol, and would never see our close code.
        "accept_subprotocol": SUBPROTOCOL if SUBPROTOCOL in offered else None,
        # Names the credential that authenticated (accounts.signals.credential_id), so that
        # the connection can be closed when that credential is revoked or logged out.
        "auth_credential": None,
    }

    presented = _presented(scope, offered)
    if presented is None:
        return result
    method, secret = presented
    if method == "bearer":
        user = await auser_for_token(raw_token=secret)
        if user is not None:
            result.update(
                user=user,
                auth_method="bearer",
                auth_close_code=None,
                auth_credential=credential_id("bearer", secret),
            )
        return result

    session_key = secret
    if not origin_is_allowed(
        _header(scope, b"origin"), host=_header(scope, b"host"), secure=scope.get("scheme") == "wss"
    ):
        result["auth_close_code"] = CLOSE_FORBIDDEN_ORIGIN
        return result
    user = await _session_user(session_key)
    if user.is_authenticated:
        result.update(
            user=user,
            auth_method="session",
            auth_close_code=None,
            auth_credential=credential_id("session", session_key),
        )
    return result


class WebsocketAuthMiddleware:
    """ASGI middleware around the websocket URLRouter; never closes a connection itself."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope.get("type") != "websocket":
            return await self.inner(scope, receive, send)
        scope = dict(scope)  # Never mutate the server's scope (channels' BaseMiddleware rule).
        scope.update(await authenticate_websocket(scope))
        return await self.inner(scope, receive, send)


async def accept_or_reject(consumer: AsyncWebsocketConsumer) -> bool:
    """Accept the handshake; close it at once with 4401/4403 when authentication failed.

    Call first in `connect()`; go on only when it returns True. A scope that did not pass
    through `WebsocketAuthMiddleware` counts as unauthenticated.
    """
    scope = consumer.scope
    await consumer.accept(subprotocol=scope.get("accept_subprotocol"))
    code = scope.get("auth_close_code", CLOSE_UNAUTHENTICATED)
    user = scope.get("user")
    if code is None and (user is None or not user.is_authenticated):
        code = CLOSE_UNAUTHENTICATED
    if code is not None:
        await consumer.close(code=code)
        return False
    return True
