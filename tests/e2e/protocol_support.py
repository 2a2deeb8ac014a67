"""A protocol stack for the websocket tests that need no answers: real Daphne (started as
scripts/run.sh starts it), PostgreSQL, Redis and the embedded store, but no worker, so every
accepted generation stays queued. Small limits, so that each one can be reached quickly.

Tests that need real answers use the `live_stack` fixture (tests/conftest.py) instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import websockets

from chat.protocol import server_message_adapter
from chat.store import CONVERSATIONS, MESSAGES
from chat.store.embedded import SQLiteClient
from chatclient.client import ChatClient, ChatSession
from tests.support.stack import REPO, Stack, daphne_argv, free_port, wait_for_ok

DATABASE = "chat_ws_protocol"
REDIS_DB = 13
QUEUE = "inference.smollm2-135m"
LIMITS = {
    "CHAT_RATE_PER_MINUTE": "6",
    "CHAT_DAILY_MESSAGE_QUOTA": "4",
    "CHAT_MAX_CONCURRENT_GENERATIONS": "2",
    "CHAT_MAX_CONNECTIONS_PER_USER": "3",
    "CHAT_MAX_QUEUE_DEPTH": "10000",
    "CHAT_WS_PING_INTERVAL_SECONDS": "1",
    "CHAT_WS_PING_TIMEOUT_SECONDS": "3",
    # High enough for the live fuzz (one frame per round trip); tests/e2e/test_frame_limits.py
    # floods past the per-user window.
    "CHAT_FRAMES_PER_SECOND_PER_CONNECTION": "1000",
    "CHAT_FRAMES_PER_MINUTE_PER_USER": "3000",
}


def _wait_healthy(stack: Stack, timeout: float = 60) -> None:
    wait_for_ok(
        f"{stack.base_url}/healthz",
        stack.processes["web"],
        what="Daphne",
        log=lambda: stack.log("web"),
        timeout=timeout,
    )


def start_web_only(
    workdir: Any, *, database: str, redis_db: int, extra_env: dict[str, str]
) -> Stack:
    """Daphne alone on its own PostgreSQL database, Redis database and store (stop it with
    `stack.stop()`)."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "MONGODB_URL": f"embedded://{workdir / 'store'}",
        "CACHE_KEY_PREFIX": f"e2e-{database}",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_TRUSTED_ORIGINS": f"http://127.0.0.1:{port}",
        "PYTHONUNBUFFERED": "1",
        # Every test client registers from 127.0.0.1; real ones come from many addresses
        # (a session's protocol tests register more than the default allows in an hour).
        "REGISTRATION_IP_LIMIT": "100000",
        # Test clients reconnect faster than people, all from 127.0.0.1, and the security
        # tests fail handshakes on purpose (tests/e2e/test_connect_rate.py tests the limits).
        "CHAT_CONNECTS_PER_MINUTE_PER_CREDENTIAL": "600",
        "CHAT_FAILED_CONNECTS_PER_MINUTE_PER_ADDRESS": "0",
        # Several stacks share one PostgreSQL server: no thread keeps an idle connection.
        "DATABASE_CONN_MAX_AGE": "0",
        **extra_env,
    }
    subprocess.run(
        ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", database], check=True
    )
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPO,
        env=env,
        check=True,
    )
    stack = Stack(
        base_url=f"http://127.0.0.1:{port}",
        ws_url=f"ws://127.0.0.1:{port}/ws/chat/",
        env=env,
        workdir=workdir,
    )
    stack.start_process("web", daphne_argv(port=port))
    try:
        _wait_healthy(stack)
    except BaseException:
        stack.stop()
        raise
    return stack


@contextmanager
def web_only(
    workdir: Any, *, database: str, redis_db: int, extra_env: dict[str, str]
) -> Iterator[Stack]:
    """`start_web_only`'s stack, stopped when the block ends however it ends."""
    stack = start_web_only(workdir, database=database, redis_db=redis_db, extra_env=extra_env)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def protocol_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with web_only(
        tmp_path_factory.mktemp("protocol-stack"),
        database=DATABASE,
        redis_db=REDIS_DB,
        extra_env=LIMITS,
    ) as stack:
        yield stack


def stack_redis() -> redis.Redis:
    return redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}")


def deactivate(email: str) -> None:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{DATABASE}") as connection:
        connection.execute("UPDATE accounts_user SET is_active = false WHERE email = %s", [email])


def new_client(stack: Stack) -> ChatClient:
    client = ChatClient(stack.base_url)
    client.register(f"proto-{uuid.uuid4().hex[:12]}@example.com", "correct horse battery staple 42")
    client.login()
    return client


def validated(frame: dict[str, Any]) -> dict[str, Any]:
    server_message_adapter.validate_python(frame)
    return frame


async def receive(session: ChatSession, timeout: float = 10) -> dict[str, Any]:
    """The next frame, validated against the protocol."""
    return validated(await session.receive(timeout=timeout))


async def send_and_receive(session: ChatSession, frame: dict[str, Any]) -> dict[str, Any]:
    await session.send_frame(frame)
    return await receive(session)


async def assert_quiet_then_pong(session: ChatSession, quiet_for: float = 0.5) -> None:
    """Nothing arrives within `quiet_for` seconds (nor was left unread), and then a ping is
    answered by a pong that is the very next frame: the quiet was not a dead connection or a
    broken receive, and nothing was queued behind it."""
    try:
        unexpected = await session.receive(timeout=quiet_for)
    except TimeoutError:
        pass
    else:
        raise AssertionError(f"expected nothing within {quiet_for} s, got {unexpected}")
    await session.send_frame({"type": "ping"})
    answer = await receive(session)
    assert answer == {"type": "pong"}, f"expected only a pong after the quiet, got {answer}"


def chat_send(content: str = "Hello", **fields: Any) -> dict[str, Any]:
    return {
        "type": "chat.send",
        "request_id": fields.pop("request_id", uuid.uuid4().hex),
        "conversation_id": fields.pop("conversation_id", None),
        "content": content,
        **fields,
    }


def snapshot(client: ChatClient) -> list[dict[str, Any]]:
    """Everything the user has stored, as the REST API shows it."""
    listed = client.request("GET", "/api/conversations")["results"]
    return [client.request("GET", f"/api/conversations/{c['id']}") for c in listed]


def stored(stack: Stack, email: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The user's conversations and messages as the stack's own store holds them, read from
    its embedded store's file (not through the app, and so also for a deactivated user)."""
    with psycopg.connect(stack.env["DATABASE_URL"]) as connection:
        row = connection.execute(
            "SELECT id FROM accounts_user WHERE email = %s", [email]
        ).fetchone()
    assert row is not None, f"no user {email}"
    url = stack.env["MONGODB_URL"]
    assert url.startswith("embedded://"), url
    store = SQLiteClient(Path(url.split("://", 1)[1]))
    try:
        db = store[stack.env.get("MONGODB_DB", "chat")]
        return tuple(  # type: ignore[return-value]
            sorted(db[name].find({"owner_id": row[0]}), key=lambda document: document["_id"])
            for name in (CONVERSATIONS, MESSAGES)
        )
    finally:
        store.close()


async def close_code(session: ChatSession, timeout: float = 10) -> int | None:
    """Read until the server closes; its close code (None: dropped without a close frame)."""
    try:
        while True:
            await asyncio.wait_for(session.connection.recv(), timeout)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame)
