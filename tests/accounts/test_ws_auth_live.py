"""Websocket authentication over a real handshake: Daphne serving the real middleware, the
`websockets` client library on the other end, PostgreSQL behind both."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from django.conf import settings
from django.test import Client
from websockets.asyncio.client import connect
from websockets.typing import Origin, Subprotocol

from accounts.models import User
from accounts.services import token_issue

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]
TRUSTED_ORIGIN = "http://app.localhost:5173"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def daphne_url(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
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
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "tests.accounts.asgi_probe:application"],
            cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Daphne did not start:\n" + log.read_text()) from None
                time.sleep(0.2)
        yield f"ws://127.0.0.1:{port}/ws/test/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
