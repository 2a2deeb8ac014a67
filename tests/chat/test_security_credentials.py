"""Issue 15, finding 6: an open websocket does not outlive its credential. A logout of its
session, a revocation of its token, a password change (for a session) and a suspension close
it with 4401 at once, through the channel layer; a credential that expires, or whose event was
lost, is caught by the connection's periodic check. Other credentials of the same user keep
their connections."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from pytest_django import Settings

from accounts.models import ApiToken, User
from accounts.services import token_issue, token_revoke
from tests.chat.consumer_support import Dispatched, application

pytest_plugins = ["tests.chat.consumer_support"]
pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "http://localhost:8000"
CLOSED = {"type": "websocket.close", "code": 4401}


@pytest.fixture
def web(settings: Settings) -> None:
    settings.CSRF_TRUSTED_ORIGINS = [ORIGIN]
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]


async def _open(headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application(), "/ws/chat/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    await _assert_open(communicator)
    return communicator


async def _assert_open(communicator: WebsocketCommunicator) -> None:
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}


async def _by_token(user: User) -> tuple[str, WebsocketCommunicator]:
    raw_token, _ = await sync_to_async(token_issue)(user=user)
    communicator = await _open([(b"authorization", f"Bearer {raw_token}".encode())])
    return raw_token, communicator


def _logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


async def _by_session(client: Client) -> WebsocketCommunicator:
    name = django_settings.SESSION_COOKIE_NAME
    cookie = f"{name}={client.cookies[name].value}"
    return await _open([(b"cookie", cookie.encode()), (b"origin", ORIGIN.encode())])


async def _closed(communicator: WebsocketCommunicator) -> dict[str, Any]:
    output: dict[str, Any] = await communicator.receive_output(timeout=5)
    return output


async def test_revoking_a_token_closes_its_connections_and_no_other(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    raw_token, revoked = await _by_token(user)
    _, kept = await _by_token(user)

    assert await sync_to_async(token_revoke)(raw_token=raw_token)

    assert await _closed(revoked) == CLOSED
    await _assert_open(kept)
    await kept.disconnect()


async def test_logging_out_closes_that_sessions_connections_and_no_other(
    chat_env: Dispatched, make_user: Any, web: None
) -> None:
    user = await sync_to_async(make_user)()
    leaving = await sync_to_async(_logged_in)(user)
    staying = await sync_to_async(_logged_in)(user)
    by_leaving = await _by_session(leaving)
    by_staying = await _by_session(staying)
    _, by_token = await _by_token(user)

    response = await sync_to_async(leaving.post)("/api/auth/logout")

    assert response.status_code in (200, 204)
    assert await _closed(by_leaving) == CLOSED
    await _assert_open(by_staying)
    await _assert_open(by_token)
    await by_staying.disconnect()
    await by_token.disconnect()


async def test_a_password_change_closes_every_connection_of_the_user(
    chat_env: Dispatched, make_user: Any, web: None
) -> None:
    # A session's auth hash no longer matches, and a password change revokes the user's
    # bearer tokens (accounts.models.User.save).
    user = await sync_to_async(make_user)()
    by_session = await _by_session(await sync_to_async(_logged_in)(user))
    _, by_token = await _by_token(user)

    def change_password() -> None:
        fresh = User.objects.get(pk=user.pk)
        fresh.set_password("another long passphrase 42")
        fresh.save()

    await sync_to_async(change_password)()

    assert await _closed(by_session) == CLOSED
    assert await _closed(by_token) == CLOSED


async def test_suspending_the_user_closes_every_connection(
    chat_env: Dispatched, make_user: Any, web: None
) -> None:
    user = await sync_to_async(make_user)()
    by_session = await _by_session(await sync_to_async(_logged_in)(user))
    _, by_token = await _by_token(user)

    def suspend() -> None:
        fresh = User.objects.get(pk=user.pk)
        fresh.is_active = False
        fresh.save()

    await sync_to_async(suspend)()

    assert await _closed(by_session) == CLOSED
    assert await _closed(by_token) == CLOSED


async def test_a_save_that_changes_no_credential_closes_nothing(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    _, by_token = await _by_token(user)

    def rename() -> None:
        fresh = User.objects.get(pk=user.pk)
        fresh.display_name = "Renamed"
        fresh.save()

    await sync_to_async(rename)()

    await asyncio.sleep(0.3)
    await _assert_open(by_token)
    await by_token.disconnect()


async def test_a_credential_that_lapsed_unannounced_is_caught_by_the_periodic_check(
    chat_env: Dispatched, make_user: Any, settings: Settings
) -> None:
    settings.CHAT_CREDENTIALS_RECHECK_SECONDS = 1
    user = await sync_to_async(make_user)()
    _, active = await _by_token(user)
    _, idle = await _by_token(user)

    # Expired in the database, with no event: as if a revocation's event were lost.
    await sync_to_async(ApiToken.objects.filter(user=user).update)(expires_at=timezone.now())
    await asyncio.sleep(1.1)

    await active.send_json_to({"type": "ping"})
    assert await _closed(active) == CLOSED  # checked before its next frame
    assert await _closed(idle) == CLOSED  # checked on its timer (within 1.5 s)
