"""Websocket authentication (PROTOCOL.md): each accepted credential and each rejection,
through the real middleware and a real consumer, against PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone
from pytest_django import Settings

from accounts.models import ApiToken, User
from accounts.services import token_issue
from accounts.ws_auth import WebsocketAuthMiddleware
from tests.accounts.asgi_probe import websocket_routes

pytestmark = pytest.mark.django_db(transaction=True)

ALLOWED_ORIGIN = "http://localhost:8000"


# The test consumer (tests/accounts/asgi_probe.py) calls `accept_or_reject` and then sends back
# {"email", "method"} of the user the middleware found.
application = WebsocketAuthMiddleware(websocket_routes)
bare_application = websocket_routes  # the consumer without the middleware


@dataclass
class Credentials:
    user: User
    token: str
    session_cookie: bytes


@pytest.fixture
def creds(user: User, settings: Settings) -> Credentials:
    settings.CSRF_TRUSTED_ORIGINS = [ALLOWED_ORIGIN]
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    raw, _ = token_issue(user=user)
    client = Client()
    client.force_login(user)
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    return Credentials(user, raw, f"{settings.SESSION_COOKIE_NAME}={session_key}".encode())


async def connect(
    path_: str = "/ws/test/",
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    subprotocols: list[str] | None = None,
    app: Any = application,
) -> tuple[WebsocketCommunicator, bool, Any]:
    communicator = WebsocketCommunicator(app, path_, headers=headers, subprotocols=subprotocols)
    connected, subprotocol = await communicator.connect()
    return communicator, connected, subprotocol


async def assert_accepted_as(communicator: WebsocketCommunicator, email: str, method: str) -> None:
    assert json.loads(await communicator.receive_from()) == {"email": email, "method": method}
    await communicator.disconnect()


async def assert_closed_with(communicator: WebsocketCommunicator, code: int) -> None:
    # Accepted first, then closed: the client sees our code instead of a failed handshake.
    assert await communicator.receive_output() == {"type": "websocket.close", "code": code}
    await communicator.disconnect()


# --- accepted -------------------------------------------------------------------------------


async def test_authorization_header_bearer_token_is_accepted(creds: Credentials) -> None:
    headers = [(b"authorization", f"Bearer {creds.token}".encode())]

    communicator, connected, subprotocol = await connect(headers=headers)

    assert connected and subprotocol is None
    await assert_accepted_as(communicator, creds.user.email, "bearer")


async def test_subprotocol_pair_is_accepted_and_answered_with_chat_v1_only(
    creds: Credentials,
) -> None:
    communicator, connected, subprotocol = await connect(
        subprotocols=["chat.v1", f"bearer.{creds.token}"]
    )

    assert connected
    assert subprotocol == "chat.v1"  # never the token
    await assert_accepted_as(communicator, creds.user.email, "bearer")


async def test_session_cookie_from_a_trusted_origin_is_accepted(creds: Credentials) -> None:
    headers = [(b"cookie", creds.session_cookie), (b"origin", ALLOWED_ORIGIN.encode())]

    communicator, connected, _ = await connect(headers=headers)

    assert connected
    await assert_accepted_as(communicator, creds.user.email, "session")


async def test_session_cookie_from_the_pages_own_allowed_host_is_accepted(
    creds: Credentials,
) -> None:
    headers = [
        (b"cookie", creds.session_cookie),
        (b"origin", b"http://127.0.0.1:9000"),
        (b"host", b"127.0.0.1:9000"),
    ]

    communicator, connected, _ = await connect(headers=headers)

    assert connected
    await assert_accepted_as(communicator, creds.user.email, "session")


async def test_browser_offering_chat_v1_with_a_cookie_gets_chat_v1(creds: Credentials) -> None:
    headers = [(b"cookie", creds.session_cookie), (b"origin", ALLOWED_ORIGIN.encode())]

    communicator, _, subprotocol = await connect(headers=headers, subprotocols=["chat.v1"])

    assert subprotocol == "chat.v1"
    await assert_accepted_as(communicator, creds.user.email, "session")


# --- rejected -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "https://localhost:8000", "http://localhost:8000.evil.example", "null"],
)
async def test_session_cookie_from_another_origin_is_closed_4403(
    creds: Credentials, origin: str
) -> None:
    headers = [(b"cookie", creds.session_cookie), (b"origin", origin.encode())]

    communicator, connected, _ = await connect(headers=headers)

    assert connected
    await assert_closed_with(communicator, 4403)


async def test_session_cookie_without_origin_is_closed_4403(creds: Credentials) -> None:
    communicator, _, _ = await connect(headers=[(b"cookie", creds.session_cookie)])
    await assert_closed_with(communicator, 4403)


async def test_origin_matching_a_host_outside_allowed_hosts_is_closed_4403(
    creds: Credentials,
) -> None:
    headers = [
        (b"cookie", creds.session_cookie),
        (b"origin", b"http://evil.example"),
        (b"host", b"evil.example"),
    ]
    communicator, _, _ = await connect(headers=headers)
    await assert_closed_with(communicator, 4403)


@pytest.mark.parametrize("how", ["header", "subprotocol"])
@pytest.mark.parametrize("state", ["expired", "revoked"])
async def test_unusable_token_is_closed_4401(creds: Credentials, how: str, state: str) -> None:
    change = (
        {"expires_at": timezone.now() - timedelta(seconds=1)}
        if state == "expired"
        else {"revoked_at": timezone.now()}
    )
    await ApiToken.objects.filter(user=creds.user).aupdate(**change)
    if how == "header":
        kwargs: dict[str, Any] = {"headers": [(b"authorization", f"Bearer {creds.token}".encode())]}
    else:
        kwargs = {"subprotocols": ["chat.v1", f"bearer.{creds.token}"]}

    communicator, connected, subprotocol = await connect(**kwargs)

    assert connected
    assert subprotocol == ("chat.v1" if how == "subprotocol" else None)
    await assert_closed_with(communicator, 4401)


@pytest.mark.parametrize("param", ["token", "access_token", "bearer"])
async def test_token_in_the_query_string_is_ignored_and_closed_4401(
    creds: Credentials, param: str
) -> None:
    communicator, _, _ = await connect(f"/ws/test/?{param}={creds.token}")
    await assert_closed_with(communicator, 4401)


async def test_no_credentials_are_closed_4401(creds: Credentials) -> None:
    communicator, connected, _ = await connect(headers=[(b"origin", ALLOWED_ORIGIN.encode())])

    assert connected
    await assert_closed_with(communicator, 4401)


async def test_bearer_subprotocol_without_chat_v1_is_closed_4401(creds: Credentials) -> None:
    communicator, _, subprotocol = await connect(subprotocols=[f"bearer.{creds.token}"])

    assert subprotocol is None
    await assert_closed_with(communicator, 4401)


async def test_invalid_bearer_header_does_not_fall_back_to_the_session(
    creds: Credentials,
) -> None:
    headers = [
        (b"authorization", b"Bearer chat_forged"),
        (b"cookie", creds.session_cookie),
        (b"origin", ALLOWED_ORIGIN.encode()),
    ]
    communicator, _, _ = await connect(headers=headers)
    await assert_closed_with(communicator, 4401)


async def test_repeated_authorization_headers_are_refused_not_guessed(
    creds: Credentials,
) -> None:
    headers = [
        (b"authorization", f"Bearer {creds.token}".encode()),
        (b"authorization", b"Bearer chat_other"),
        (b"cookie", creds.session_cookie),
        (b"origin", ALLOWED_ORIGIN.encode()),
    ]
    communicator, _, _ = await connect(headers=headers)
    await assert_closed_with(communicator, 4401)


async def test_logged_out_session_cookie_is_closed_4401(creds: Credentials) -> None:
    headers = [
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}=not-a-session".encode()),
        (b"origin", ALLOWED_ORIGIN.encode()),
    ]
    communicator, _, _ = await connect(headers=headers)
    await assert_closed_with(communicator, 4401)


async def test_session_of_a_deactivated_user_is_closed_4401(creds: Credentials) -> None:
    await User.objects.filter(pk=creds.user.pk).aupdate(is_active=False)
    headers = [(b"cookie", creds.session_cookie), (b"origin", ALLOWED_ORIGIN.encode())]
    communicator, _, _ = await connect(headers=headers)
    await assert_closed_with(communicator, 4401)


async def test_consumer_without_the_middleware_rejects_even_a_valid_token(
    creds: Credentials,
) -> None:
    headers = [(b"authorization", f"Bearer {creds.token}".encode())]
    communicator, _, _ = await connect(headers=headers, app=bare_application)
    await assert_closed_with(communicator, 4401)
