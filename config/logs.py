"""Structured logs: one JSON object per line from every process (`LOG_FORMAT=json`, the default
with DEBUG off), each with the ids of what it is about, and never a message's text.

The ids live in context variables, set where they become known and read by `IdsFilter` on the
console handler, so a log call anywhere below gets them without passing them:
- the websocket consumer, per frame (`chat.consumers`): request, user, conversation and
  generation ids;
- `RequestIds`, the outermost ASGI layer, per HTTP request and per websocket connection: a
  request id (the client's `X-Request-ID` when it is a plausible one, else a new one), kept in
  the scope (`scope_request_id`) so that the web server's access-log lines about it
  (config/server.py), Django and the response's `X-Request-ID` all name the same one;
- `IdsMiddleware`, per HTTP request in Django: that request id and the user;
- a Celery task, from its message headers (`log_ids`, added by `task_published`): the ids of
  whatever published it, so a worker's lines carry the frame's request id; the generation task
  adds the generation and conversation it streams.
With tracing on (config/tracing.py) each line also carries its trace and span ids.

What the ids are keeps text out: ids, counts and states are logged; contents never are. This
module imports no app and no Django setting at import (it is named in LOGGING).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

ID_NAMES = ("request_id", "user_id", "conversation_id", "generation_id")
_IDS: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"log_{name}", default=None) for name in ID_NAMES
}
# The Celery message header that carries the publisher's ids to the task.
HEADER = "log_ids"
# What a client's X-Request-ID (or a frame's request_id) may be to be logged as given.
PLAUSIBLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _clean(value: object) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    return text if PLAUSIBLE_ID.fullmatch(text) else None


def current() -> dict[str, str]:
    """The ids set in this context (those not set are left out)."""
    found = {name: var.get() for name, var in _IDS.items()}
    return {name: value for name, value in found.items() if value is not None}


def bind(**ids: object) -> None:
    """Set ids for the rest of this context. Only where that context ends with the work: an
    asyncio task's own, or within `log_context` (in a thread's long-lived context they would
    stay). Values that are None are left as they are; anything that does not look like an id
    is dropped."""
    for name, value in ids.items():
        cleaned = _clean(value)
        if cleaned is not None:
            _IDS[name].set(cleaned)


@contextlib.contextmanager
def log_context(**ids: object) -> Iterator[None]:
    """Exactly these ids within the block (every other id unset), restored after it: a
    connection's frames or a pool thread's tasks do not inherit each other's ids."""
    tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = [
        (var, var.set(_clean(ids.get(name)))) for name, var in _IDS.items()
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def adding(**ids: object) -> contextlib.AbstractContextManager[None]:
    """The ids of this context and these (None: kept as they are) within the block."""
    return log_context(**{**current(), **{k: v for k, v in ids.items() if v is not None}})


def request_id_from(value: str | None) -> str:
    """The client's request id when it is a plausible one, else a new one."""
    return _clean(value) or uuid.uuid4().hex


# Where an HTTP request's or a websocket connection's ASGI scope keeps its request id.
SCOPE_KEY = "request_id"
REQUEST_ID_HEADER = b"x-request-id"


def scope_request_id(scope: dict[str, Any]) -> str:
    """The request id of an HTTP request or a websocket connection: the one its scope holds,
    else one chosen now (`request_id_from` its `X-Request-ID`) and kept in the scope, so that
    whoever asks first (the web server, `RequestIds`, Django's `IdsMiddleware`) decides it for
    all of them."""
    found = scope.get(SCOPE_KEY)
    if isinstance(found, str):
        return found
    given = next(
        (value for name, value in scope.get("headers", ()) if name.lower() == REQUEST_ID_HEADER),
        None,
    )
    request_id = request_id_from(given.decode("latin-1") if given is not None else None)
    scope[SCOPE_KEY] = request_id
    return request_id


# --- formatting -----------------------------------------------------------------------------

# Set by config/tracing.py when tracing is on: (trace_id, span_id) of the current span, or None.
trace_ids: Callable[[], tuple[str, str] | None] = lambda: None  # noqa: E731


class IdsFilter(logging.Filter):
    """Puts the context's ids (and the current trace's) on every record the handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _IDS.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        trace = trace_ids()
        if trace is not None:
            record.trace_id, record.span_id = trace
        # For the plain format: "user_id=3 generation_id=..." or "-".
        known = [f"{name}={getattr(record, name)}" for name in ID_NAMES if getattr(record, name)]
        record.ids = " ".join(known) or "-"
        return True


class JsonFormatter(_JsonFormatter):
    """`{"time", "level", "logger", "message", "process", <ids>...}` per line; ids that are not
    known are left out rather than null."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("reserved_attrs", [*_RESERVED, "ids"])
        super().__init__(["levelname", "name", "message", "process"], *args, **kwargs)

    def process_log_record(self, log_data: Mapping[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in log_data.items() if value is not None}


def _reserved() -> list[str]:
    from pythonjsonlogger.core import RESERVED_ATTRS

    return list(RESERVED_ATTRS)


_RESERVED = _reserved()


# vLLM configures its own logger ("vllm", not propagated) in the worker and in the engine
# processes it spawns, from a dictConfig file named by VLLM_LOGGING_CONFIG_PATH: the same JSON
# fields, from the library's formatter (the engine processes do not import the project).
VLLM_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": ["levelname", "name", "message", "process"],
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        }
    },
    "handlers": {
        # The real stdout: a Celery worker replaces sys.stdout with a proxy that would log
        # each JSON line again, as the message of one of its own.
        "json": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.__stdout__",
        }
    },
    "loggers": {"vllm": {"handlers": ["json"], "level": "INFO", "propagate": False}},
}


def vllm_logging_config_file(directory: Path) -> Path:
    """`VLLM_LOGGING` written to `directory` (replaced whole: processes may race)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "vllm-logging.json"
    partial = directory / f".vllm-logging.{os.getpid()}.json"
    partial.write_text(json.dumps(VLLM_LOGGING))
    os.replace(partial, target)
    return target


class AccessLog:
    """Daphne's access log (its "action logger") as log records of `daphne.access`, so that it
    is JSON like every other line; paths without their query strings (a search's `q=` is text
    the user typed)."""

    logger = logging.getLogger("daphne.access")
    ACTIONS = {
        ("websocket", "connecting"): "WSCONNECTING",
        ("websocket", "rejected"): "WSREJECT",
        ("websocket", "connected"): "WSCONNECT",
        ("websocket", "disconnected"): "WSDISCONNECT",
    }

    def __call__(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        path = str(details.get("path", "")).split("?", 1)[0]
        client = details.get("client")
        if protocol == "http" and action == "complete":
            status = details.get("status")
            self.logger.info(
                "%s %s %s",
                details.get("method"),
                path,
                status,
                extra={"client": client, "status": status, "bytes": details.get("size")},
            )
        elif (protocol, action) in self.ACTIONS:
            self.logger.info(
                "%s %s", self.ACTIONS[protocol, action], path, extra={"client": client}
            )


# --- HTTP and websocket connections ------------------------------------------------------------

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class RequestIds:
    """ASGI, around the whole application (config/asgi.py): an HTTP request or a websocket
    connection runs with its request id (`scope_request_id`) in the log context, and every HTTP
    response carries it as `X-Request-ID`, whichever layer answered (a static file and a redirect
    too, which Django's middleware before `IdsMiddleware` answers). Daphne writes its access-log
    line while the application sends the response's last part, so that line has the id too."""

    def __init__(self, app: Callable[[dict[str, Any], Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = scope_request_id(scope)
        if scope["type"] == "websocket":
            # A websocket's frames set their own ids (chat.consumers); Daphne sends no headers
            # of an application's websocket.accept.
            with log_context(request_id=request_id):
                await self.app(scope, receive, send)
            return

        header = (REQUEST_ID_HEADER, request_id.encode())

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if all(name.lower() != REQUEST_ID_HEADER for name, _ in headers):
                    message = {**message, "headers": [*headers, header]}
            await send(message)

        with log_context(request_id=request_id):
            await self.app(scope, receive, send_with_id)


class IdsMiddleware:
    """Every HTTP request's log lines carry its request id and user; the response echoes the
    request id (`X-Request-ID`), so a client can quote it. After the middleware that set
    `request.user` (session, bearer token). Under ASGI the id is the scope's (`RequestIds`,
    the web server's access log); a request without a scope (the test client) gets one here."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        scope = getattr(request, "scope", None)
        if isinstance(scope, dict):
            request_id = scope_request_id(scope)
        else:
            request_id = request_id_from(request.headers.get("X-Request-ID"))
        user = getattr(request, "user", None)
        user_id = user.pk if user is not None and user.is_authenticated else None
        with log_context(request_id=request_id, user_id=user_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


# --- Celery: the publisher's ids travel with the task -------------------------------------------


def task_published(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """`before_task_publish`: the ids of this context go into the message's headers."""
    ids = current()
    if headers is not None and ids:
        headers.setdefault(HEADER, ids)


_task_tokens: dict[str, list[tuple[ContextVar[str | None], Token[str | None]]]] = {}


def task_started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """`task_prerun`: the task's thread logs with the publisher's ids until the task ends."""
    carried = getattr(getattr(task, "request", None), HEADER, None)
    carried = carried if isinstance(carried, dict) else {}
    if task_id is not None:
        _task_tokens[task_id] = [
            (var, var.set(_clean(carried.get(name)))) for name, var in _IDS.items()
        ]


def task_ended(task_id: str | None = None, **_: Any) -> None:
    """`task_postrun`: the thread's ids as they were before the task."""
    for var, token in reversed(_task_tokens.pop(task_id or "", [])):
        with contextlib.suppress(ValueError):  # set in another context: nothing to restore
            var.reset(token)
