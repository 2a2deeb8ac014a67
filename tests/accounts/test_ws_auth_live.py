"""Websocket authentication over a real handshake: Daphne serving the real middleware, the
`websockets` client library on the other end, PostgreSQL behind both."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from django.conf import settings
from django.test import Client
from websockets.asyncio.client import connect
from websockets.typing import Origin, Subprotocol

from accounts.models import User
from accounts.services import token_issue
from tests.support.daphne import daphne_running, free_port

pytestmark = pytest.mark.django_db(transaction=True)

TRUSTED_ORIGIN = "http://app.localhost:5173"


@pytest.fixture(scope="module")
def daphne_url(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        # The test database pytest-django created, where each test commits its users.
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
        "DJANGO_TRUSTED_ORIGINS": TRUSTED_ORIGIN,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    log = tmp_path_factory.mktemp("daphne") / "daphne.log"
    arguments = ["-b", "127.0.0.1", "-p", str(port), "tests.accounts.asgi_probe:application"]
    with daphne_running(arguments, port=port, env=env, log=log, timeout=30):
        yield f"ws://127.0.0.1:{port}/ws/test/"


async def close_code(url: str, **kwargs: Any) -> int | None:
    async with connect(url, proxy=None, **kwargs) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    return closed.value.rcvd.code if closed.value.rcvd else None


@pytest.fixture
def token(user: User) -> str:
    raw, _ = token_issue(user=user)
    return raw


@pytest.fixture
def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def test_subprotocol_pair_is_answered_with_chat_v1_over_the_wire(
    daphne_url: str, token: str, user: User
) -> None:
    offered = [Subprotocol("chat.v1"), Subprotocol(f"bearer.{token}")]
    async with connect(daphne_url, proxy=None, subprotocols=offered) as ws:
        assert ws.subprotocol == "chat.v1"
        assert ws.response is not None and token not in str(ws.response.headers)
        assert json.loads(await ws.recv()) == {"email": user.email, "method": "bearer"}


async def test_authorization_header_over_the_wire(daphne_url: str, token: str, user: User) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(daphne_url, proxy=None, additional_headers=headers) as ws:
        assert json.loads(await ws.recv()) == {"email": user.email, "method": "bearer"}


async def test_session_cookie_from_the_trusted_origin_over_the_wire(
    daphne_url: str, session_cookie: str, user: User
) -> None:
    async with connect(
        daphne_url,
        proxy=None,
        origin=Origin(TRUSTED_ORIGIN),
        additional_headers={"Cookie": session_cookie},
    ) as ws:
        assert json.loads(await ws.recv()) == {"email": user.email, "method": "session"}


async def test_session_cookie_from_another_origin_is_closed_4403_over_the_wire(
    daphne_url: str, session_cookie: str
) -> None:
    code = await close_code(
        daphne_url,
        origin=Origin("http://evil.example"),
        additional_headers={"Cookie": session_cookie},
    )
    assert code == 4403


async def test_token_in_query_string_is_closed_4401_over_the_wire(
    daphne_url: str, token: str
) -> None:
    assert await close_code(f"{daphne_url}?token={token}") == 4401
