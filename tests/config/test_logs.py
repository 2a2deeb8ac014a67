"""Structured logs (config/logs.py): JSON lines with the ids of the context they were written
in, the ids scoped to a frame, a request or a task, carried from a publisher to its Celery task,
and LOG_FORMAT choosing JSON or text. The real stack's lines are checked in
tests/e2e/test_observability_e2e.py."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import AsyncRequestFactory, Client, RequestFactory

from accounts.models import User
from accounts.services import token_issue
from config import logs

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the loggers `test.logs` and `daphne.access` (the web server's access log) write
    through a handler configured as LOGGING's JSON one."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.IdsFilter())
    handler.setFormatter(logs.JsonFormatter())
    loggers = [logging.getLogger("test.logs"), logs.AccessLog.logger]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_the_ids_of_its_context(lines: io.StringIO) -> None:
    log = logging.getLogger("test.logs")
    with logs.log_context(request_id="req-1", user_id=42):
        logs.bind(generation_id="gen-1", conversation_id="conv-1")
        log.info("generation %s streamed %d deltas", "gen-1", 3)
    log.info("outside")

    inside, outside = parsed(lines)
    assert inside["message"] == "generation gen-1 streamed 3 deltas"
    assert inside["level"] == "INFO" and inside["logger"] == "test.logs"
    assert (inside["request_id"], inside["user_id"]) == ("req-1", "42")
    assert (inside["conversation_id"], inside["generation_id"]) == ("conv-1", "gen-1")
    assert inside["time"].endswith("+00:00") and isinstance(inside["process"], int)
    # Ids not known are left out, not null; the block's ids are gone after it.
    assert not set(logs.ID_NAMES) & set(outside)


def test_a_nested_context_replaces_every_id_and_restores_them_after(lines: io.StringIO) -> None:
    log = logging.getLogger("test.logs")
    with logs.log_context(request_id="outer", generation_id="g-outer"):
        with logs.log_context(request_id="inner"):
            log.info("inner")
        log.info("outer again")

    inner, outer = parsed(lines)
    assert inner["request_id"] == "inner" and "generation_id" not in inner
    assert (outer["request_id"], outer["generation_id"]) == ("outer", "g-outer")


def test_only_plausible_ids_are_logged_so_text_cannot_pass_for_an_id(lines: io.StringIO) -> None:
    with logs.log_context(request_id="tell me a secret about my neighbour", user_id=7):
        logs.bind(conversation_id="x" * 200)
        logging.getLogger("test.logs").info("frame")

    (line,) = parsed(lines)
    assert "request_id" not in line and "conversation_id" not in line
    assert "neighbour" not in lines.getvalue()
    assert logs.request_id_from("tell me a secret") != "tell me a secret"
    assert logs.request_id_from("abc-123") == "abc-123"


def test_an_exception_is_logged_inside_the_json_object(lines: io.StringIO) -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        logging.getLogger("test.logs").exception("failed")

    (line,) = parsed(lines)
    assert line["level"] == "ERROR" and "ValueError: broken" in line["exc_info"]


def test_a_task_runs_with_the_ids_its_publisher_had() -> None:
    headers: dict = {}
    with logs.log_context(request_id="r-9", user_id=5, generation_id="g-9"):
        logs.task_published(headers=headers)
    assert headers[logs.HEADER] == {"request_id": "r-9", "user_id": "5", "generation_id": "g-9"}

    task = SimpleNamespace(request=SimpleNamespace(**headers))
    logs.task_started(task_id="t-1", task=task)
    try:
        assert logs.current() == {"request_id": "r-9", "user_id": "5", "generation_id": "g-9"}
    finally:
        logs.task_ended(task_id="t-1")
    assert logs.current() == {}


def test_a_task_published_without_ids_carries_no_header() -> None:
    headers: dict = {}
    logs.task_published(headers=headers)
    assert headers == {}


def test_the_middleware_scopes_a_request_id_and_the_user_and_echoes_the_id() -> None:
    seen: list[dict[str, str]] = []

    def view(request: object) -> HttpResponse:
        seen.append(logs.current())
        return HttpResponse()

    middleware = logs.IdsMiddleware(view)
    given = RequestFactory().get("/", HTTP_X_REQUEST_ID="client-req-1")
    given.user = SimpleNamespace(pk=7, is_authenticated=True)  # type: ignore[attr-defined]
    made = RequestFactory().get("/", HTTP_X_REQUEST_ID="not an id; drop table")
    made.user = AnonymousUser()  # type: ignore[attr-defined]

    assert middleware(given)["X-Request-ID"] == "client-req-1"
    made_id = middleware(made)["X-Request-ID"]

    assert seen == [{"request_id": "client-req-1", "user_id": "7"}, {"request_id": made_id}]
    assert made_id != "not an id; drop table" and logs.current() == {}


@pytest.mark.django_db
def test_every_api_response_carries_its_request_id() -> None:
    user = User.objects.create_user("ids@example.com", "correct horse battery staple 1")
    raw, _ = token_issue(user=user)
    response = Client().get(
        "/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_X_REQUEST_ID="client-req-2"
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == "client-req-2"


def _settings_log(env: dict[str, str]) -> str:
    code = (
        "import django, logging; django.setup(); logging.getLogger('probe').warning('probe line')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stderr.strip().splitlines()[-1]


def test_log_format_json_is_the_default_without_debug_and_text_with_it() -> None:
    base = {k: v for k, v in os.environ.items() if k != "LOG_FORMAT"}
    production = {**base, "DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}
    assert json.loads(_settings_log(production))["message"] == "probe line"
    text = _settings_log({**base, "DJANGO_DEBUG": "true"})
    assert text.endswith("WARNING probe [-]: probe line")
    assert json.loads(_settings_log({**base, "DJANGO_DEBUG": "true", "LOG_FORMAT": "json"}))


def test_the_access_log_is_json_without_query_strings(lines: io.StringIO) -> None:
    logs.AccessLog()(
        "http",
        "complete",
        {"path": "/api/conversations?q=my+divorce+lawyer", "status": 200, "method": "GET",
         "client": "127.0.0.1:5000", "size": 42},
    )  # fmt: skip
    logs.AccessLog()("websocket", "connected", {"path": "/ws/chat/", "client": "1.2.3.4:1"})

    http, websocket = parsed(lines)
    assert http["message"] == "GET /api/conversations 200" and http["status"] == 200
    assert (http["client"], http["bytes"]) == ("127.0.0.1:5000", 42)
    assert websocket["message"] == "WSCONNECT /ws/chat/"
    assert "divorce" not in lines.getvalue()


# --- one request id per request or connection, from the web server to the response ------------


def http_scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": "/api/x", "headers": list(headers)}


def test_a_scope_keeps_one_request_id_the_clients_when_plausible() -> None:
    given = http_scope((b"X-Request-ID", b"client-req-3"))
    implausible = http_scope((b"x-request-id", b"drop table; --"))
    none = http_scope()

    assert logs.scope_request_id(given) == "client-req-3" == given["request_id"]
    made = logs.scope_request_id(implausible)
    assert made != "drop table; --" and logs.PLAUSIBLE_ID.fullmatch(made)
    assert logs.scope_request_id(implausible) == made  # decided once, by whoever asks first
    assert logs.scope_request_id(none) != made


async def test_the_asgi_layer_gives_the_lines_the_access_log_and_the_response_one_id(
    lines: io.StringIO,
) -> None:
    """Daphne writes a response's access-log line inside the application's last `send`, as this
    `send` does; a response whose application set no X-Request-ID gets the request's."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        logging.getLogger("test.logs").info("answering")
        headers = [(b"content-type", b"text/plain")]
        if scope["path"] == "/own":
            headers.append((b"X-Request-ID", scope["request_id"].encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            logs.AccessLog()("http", "complete", {"path": "/api/x", "status": 200, "method": "GET"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    await logs.RequestIds(app)(http_scope(), receive, send)
    await logs.RequestIds(app)(
        {**http_scope((b"x-request-id", b"r-own")), "path": "/own"}, receive, send
    )

    made = dict(sent[0]["headers"])[b"x-request-id"].decode()
    own_headers = [name.lower() for name, _ in sent[2]["headers"]]
    answering, access, own_answering, own_access = parsed(lines)
    assert answering["request_id"] == access["request_id"] == made
    assert access["message"] == "GET /api/x 200"
    assert own_answering["request_id"] == own_access["request_id"] == "r-own"
    assert own_headers.count(b"x-request-id") == 1
    assert logs.current() == {}


async def test_a_websocket_connection_runs_with_its_request_id(lines: io.StringIO) -> None:
    seen: list[dict[str, str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(logs.current())

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {"type": "websocket", "path": "/ws/chat/", "headers": [(b"x-request-id", b"ws-1")]}
    await logs.RequestIds(app)(scope, receive, send)
    await logs.RequestIds(app)({"type": "lifespan"}, receive, send)

    assert seen == [{"request_id": "ws-1"}, {}]


def test_django_names_the_request_id_its_scope_holds() -> None:
    seen: list[dict[str, str]] = []

    def view(request: object) -> HttpResponse:
        seen.append(logs.current())
        return HttpResponse()

    request = AsyncRequestFactory().get("/", HTTP_X_REQUEST_ID="client-says")
    scope: dict[str, Any] = request.scope  # type: ignore[assignment]
    scope["request_id"] = "server-chose"  # the web server asked first
    request.user = AnonymousUser()

    response = logs.IdsMiddleware(view)(request)

    assert response["X-Request-ID"] == "server-chose"
    assert seen == [{"request_id": "server-chose"}]


async def test_daphnes_lines_about_a_websocket_name_its_request_id(lines: io.StringIO) -> None:
    """The connecting and disconnected lines, which Daphne writes from Twisted's callbacks and
    not from the application, carry the id the server chose when it made the application."""
    from config.server import ChatServer, ChatWebSocketProtocol

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()

    web = ChatServer(application=app, endpoints=["tcp:port=0"], action_logger=print)
    connection = ChatWebSocketProtocol()
    connection.server = web  # as Daphne's onConnect sets them
    connection.request = SimpleNamespace(path="/ws/chat/")
    connection.client_addr = ["127.0.0.1", 5000]
    web.connections = {}  # made by run()
    web.protocol_connected(connection)
    scope = {"type": "websocket", "path": "/ws/chat/", "headers": [(b"x-request-id", b"ws-2")]}

    queue = web.create_application(connection, scope)
    connection.applicationCreateWorked(queue)
    connection.onClose(True, 1000, None)
    await web.connections[connection]["application_instance"]

    connecting, disconnected = parsed(lines)
    assert connecting["message"] == "WSCONNECTING /ws/chat/"
    assert disconnected["message"] == "WSDISCONNECT /ws/chat/"
    assert connecting["request_id"] == disconnected["request_id"] == scope["request_id"] == "ws-2"
    assert logs.current() == {}


async def test_a_failed_applications_500_is_logged_with_its_request_id() -> None:
    from config.server import ChatServer

    class Request:
        def handle_exception(self, exception: BaseException) -> None:
            seen.append(logs.current())  # where Daphne writes the 500 and its access line

    seen: list[dict[str, str]] = []
    web = ChatServer(application=None, endpoints=["tcp:port=0"])
    request = Request()
    failed = asyncio.get_running_loop().create_future()
    failed.set_exception(RuntimeError("the view failed"))
    web.connections = {request: {"application_instance": failed, "request_id": "r-500"}}

    web.check_application(request)

    assert seen == [{"request_id": "r-500"}]
