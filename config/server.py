"""Daphne, configured from settings for the chat protocol: `python -m config.server [daphne args]`.

Daphne's websocket layer (autobahn) owns the transport rules, so they are set there, from the
same settings the app reads (an explicit command-line flag still wins):
- `--websocket-max-message-size` / `--websocket-max-frame-size` = CHAT_MAX_FRAME_BYTES, so an
  oversized frame is refused before it is buffered or decoded;
- `--ping-interval` / `--ping-timeout` = CHAT_WS_PING_INTERVAL_SECONDS / _TIMEOUT_SECONDS: an
  idle connection is pinged, and dropped when the pong does not come in time;
- autobahn's `failByDrop` off: by default it drops the TCP connection on an oversized frame or
  invalid UTF-8, and clients see 1006. With it off they get the close code the protocol
  promises (1009 too big, 1007 invalid UTF-8). The app cannot send those codes itself:
  autobahn only lets an application close with 1000 or 3000-4999.
Per-message compression stays off: autobahn negotiates it only when a server opts in, and
Daphne never does (tests/e2e/test_protocol_limits.py checks what a client is offered).

Daphne's access log (config/logs.py, `AccessLog`) names each request's or connection's request
id, the one its application logs and answers with (`X-Request-ID`): the server decides it when
it makes the application (`config.logs.scope_request_id`), and its lines written from Twisted's
callbacks, outside the application, run with it (`ChatWebSocketProtocol`, `log_ids`). A
websocket handshake's response carries it as `X-Request-ID` too, as every HTTP response does.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pprint
import sys
import time
from concurrent.futures import CancelledError
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol

from config.env import WEB_SERVER_MARK
from config.logs import AccessLog, log_context, scope_request_id

# Daphne's own logger: its messages about applications keep their source.
daphne_logger = logging.getLogger("daphne.server")
# Every connection's application is checked at least this often (see ChatServer).
FULL_CHECK_SECONDS = 60
# The cyclic collector's thresholds in the web server (CPython's are 700, 10, 10). A process
# holding 10,000 websockets tracks some 3 million objects; with CPython's thresholds its full
# collections (about a second each) ran 16 times while they opened and every 45-60 s while
# they sat idle, a third of the idle CPU and pauses that held back the release of slots. With
# these, a full collection comes after 10 million allocations at the soonest: none in the
# opening nor in 2 minutes idle (docs/benchmarks.md, "Idle websockets per Daphne process").
# Short-lived cycles still go at the next young collection (every 50,000 allocations).
GC_THRESHOLDS = (50_000, 20, 10)


class LazyPformat:
    """`pprint.pformat(value)`, computed only when the text is used."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return pprint.pformat(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def lazy_autobahn_debug_text() -> None:
    """autobahn pretty-prints two debug messages for every new websocket (its options and the
    transport's details: `pformat` passed as a log argument) whether or not debug logging is
    on: 15% of Daphne's CPU in a connect storm (py-spy, docs/benchmarks.md). Its module's
    `pformat` becomes a lazy one, so the text is made only when a debug line is written; the
    one other use there (`Timings.__str__`, which must return a str) keeps the eager one."""
    from autobahn.websocket import protocol

    protocol.pformat = LazyPformat  # type: ignore[assignment]
    protocol.Timings.__str__ = lambda timings: pprint.pformat(timings._timings)  # type: ignore[method-assign]


class ChatServer(Server):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("action_logger") is not None:
            kwargs["action_logger"] = AccessLog()  # through logging, as JSON (config/logs.py)
        super().__init__(*args, **kwargs)
        # Connections whose application ended or whose client left: what Daphne's
        # once-a-second application check has to look at (see application_checker).
        self.to_check: set[Any] = set()
        self.next_full_check = time.monotonic() + FULL_CHECK_SECONDS

    def run(self) -> None:
        from django.conf import settings
        from twisted.internet import reactor

        endpoints: list[str] = self.endpoints  # type: ignore[has-type]
        self.endpoints = [with_backlog(e, settings.CHAT_LISTEN_BACKLOG) for e in endpoints]
        # The factory exists once run() has started; protocols copy its options per connection.
        reactor.callWhenRunning(self.tune_websocket_factory)
        super().run()

    def tune_websocket_factory(self) -> None:
        self.ws_factory.setProtocolOptions(failByDrop=False)
        self.ws_factory.protocol = ChatWebSocketProtocol

    def log_ids(self, protocol: Any) -> contextlib.AbstractContextManager[None]:
        """The log context of a connection's request (its request id), for what Daphne writes
        about it outside its application."""
        return log_context(request_id=self.connections.get(protocol, {}).get("request_id"))

    # Daphne looks at every connection once a second, to reap ended applications and cancel
    # those still running 10 s (application_close_timeout) after their client left. With
    # 10,000 idle websockets that loop was a third of the process's idle CPU, and only the
    # connections whose client left or whose application ended can need it: those are looked
    # at every second, the same way, and every connection once a minute in case.

    def protocol_disconnected(self, protocol: Any) -> None:
        super().protocol_disconnected(protocol)
        self.to_check.add(protocol)

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        if protocol in self.connections:
            self.connections[protocol]["request_id"] = scope_request_id(scope)
        queue = super().create_application(protocol, scope)
        instance = self.connections.get(protocol, {}).get("application_instance")
        if instance is not None:
            instance.add_done_callback(lambda _: self.to_check.add(protocol))
        return queue

    def application_checker(self) -> None:
        from twisted.internet import reactor as twisted_reactor

        reactor: Any = twisted_reactor

        if time.monotonic() >= self.next_full_check:
            self.next_full_check = time.monotonic() + FULL_CHECK_SECONDS
            super().application_checker()  # every connection; schedules the next check
            self.to_check = {protocol for protocol in self.to_check if protocol in self.connections}
            return
        checking, self.to_check = self.to_check, set()
        for protocol in checking:
            if protocol in self.connections and self.check_application(protocol):
                self.to_check.add(protocol)
        reactor.callLater(1, self.application_checker)

    def check_application(self, protocol: Any) -> bool:
        """Daphne's application check of one connection; True while it must be looked at
        again (its client left, its application has not ended yet)."""
        details = self.connections[protocol]
        disconnected = details.get("disconnected", None)
        instance = details.get("application_instance", None)
        overdue = disconnected and time.time() - disconnected > self.application_close_timeout
        if overdue and instance and not instance.done():
            daphne_logger.warning(
                "Application instance %r for connection %s took too long to shut down "
                "and was killed.",
                instance,
                repr(protocol),
            )
            instance.cancel()
        if instance and instance.done():
            try:
                exception = instance.exception()
            except (CancelledError, asyncio.CancelledError):
                pass
            else:
                if exception:
                    if isinstance(exception, KeyboardInterrupt):
                        self.stop()
                    else:
                        daphne_logger.error(
                            "Exception inside application: %s", exception, exc_info=exception
                        )
                        if not disconnected:
                            with self.log_ids(protocol):  # its 500's access-log line
                                protocol.handle_exception(exception)
            del details["application_instance"]
            instance = None
        if not instance and disconnected:
            del self.connections[protocol]
            return False
        return bool(disconnected)


class ChatWebSocketProtocol(WebSocketProtocol):
    """Daphne's websocket protocol, whose access-log lines (WSCONNECTING, WSCONNECT, WSREJECT,
    WSDISCONNECT) name the connection's request id: Daphne writes them from Twisted's callbacks,
    in no context of the connection's, so each of those runs in it."""

    def _ids(self) -> contextlib.AbstractContextManager[None]:
        server = getattr(self, "server", None)  # set by onConnect
        return server.log_ids(self) if isinstance(server, ChatServer) else contextlib.nullcontext()

    def applicationCreateWorked(self, application_queue: Any) -> None:
        with self._ids():
            super().applicationCreateWorked(application_queue)

    def onConnect(self, request: Any) -> Any:
        """Daphne's handshake, answered with the connection's request id (`X-Request-ID`, as on
        every HTTP response), so a client can quote it. Daphne resolves the handshake with the
        subprotocol alone; autobahn also takes (subprotocol, headers). The application, and so
        the id, is made within Daphne's `onConnect`."""
        handshake = super().onConnect(request)
        server = getattr(self, "server", None)
        details = server.connections.get(self, {}) if isinstance(server, ChatServer) else {}
        request_id = details.get("request_id")
        if request_id:
            handshake.addCallback(lambda subprotocol: (subprotocol, {"X-Request-ID": request_id}))
        return handshake

    def onOpen(self) -> None:
        with self._ids():
            super().onOpen()

    def serverReject(self) -> None:
        with self._ids():
            super().serverReject()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        with self._ids():
            super().onClose(wasClean, code, reason)


def with_backlog(endpoint: str, backlog: int) -> str:
    """A Twisted endpoint description with a listen backlog, unless it has one already."""
    if endpoint.split(":", 1)[0] in {"tcp", "ssl", "unix"} and ":backlog=" not in endpoint:
        return f"{endpoint}:backlog={backlog}"
    return endpoint


def daphne_arguments(argv: list[str], settings: Any) -> list[str]:
    """`argv` with the protocol's transport settings added where no flag sets them."""
    defaults = {
        "--websocket-max-message-size": settings.CHAT_MAX_FRAME_BYTES,
        "--websocket-max-frame-size": settings.CHAT_MAX_FRAME_BYTES,
        "--ping-interval": settings.CHAT_WS_PING_INTERVAL_SECONDS,
        "--ping-timeout": settings.CHAT_WS_PING_TIMEOUT_SECONDS,
        "--websocket_connect_timeout": settings.CHAT_WS_CONNECT_TIMEOUT_SECONDS,
    }
    given = {arg.split("=", 1)[0] for arg in argv}
    extra = [
        item for flag, value in defaults.items() if flag not in given for item in (flag, str(value))
    ]
    return extra + argv


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Django runs each HTTP request's synchronous code on a thread of its own under ASGI: a
    # pool, not one persistent connection per thread (WEB_DATABASE_POOL_MAX_SIZE).
    os.environ[WEB_SERVER_MARK] = "1"
    import django
    from django.conf import settings

    from config import memtrace, process

    if settings.LOG_FORMAT == "json":
        # Progress bars (loading the moderation models) are no log lines.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    django.setup()
    from moderation.pipeline import warm

    warm()  # before the server listens: the first users must not wait for the models
    process.tune()
    gc.set_threshold(*GC_THRESHOLDS)
    memtrace.install()  # a soak's diagnosis only (MEMORY_TRACE_DIR)
    lazy_autobahn_debug_text()
    cli = CommandLineInterface()
    cli.server_class = ChatServer
    cli.run(daphne_arguments(sys.argv[1:] if argv is None else argv, settings))


if __name__ == "__main__":
    main()
