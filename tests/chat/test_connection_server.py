"""The web server's transport settings for many websockets (config/server.py): the handshake
timeout and listen backlog passed to Daphne, and Daphne's application check narrowed to the
connections that need it."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from config import server
from config.server import ChatServer, daphne_arguments, with_backlog


class FakeReactor:
    def __init__(self) -> None:
        self.scheduled: list[tuple[float, Any]] = []

    def callLater(self, delay: float, call: Any) -> None:
        self.scheduled.append((delay, call))


class Protocol:
    def __init__(self) -> None:
        self.exceptions: list[BaseException] = []

    def handle_exception(self, exception: BaseException) -> None:
        self.exceptions.append(exception)


@pytest.fixture
def reactor(monkeypatch: pytest.MonkeyPatch) -> FakeReactor:
    import twisted.internet

    fake = FakeReactor()
    monkeypatch.setattr(twisted.internet, "reactor", fake, raising=False)
    return fake


def test_daphne_gets_the_handshake_timeout_and_a_flag_still_wins() -> None:
    settings = SimpleNamespace(
        CHAT_MAX_FRAME_BYTES=65536,
        CHAT_WS_PING_INTERVAL_SECONDS=20,
        CHAT_WS_PING_TIMEOUT_SECONDS=20,
        CHAT_WS_CONNECT_TIMEOUT_SECONDS=60,
    )

    argv = daphne_arguments(["config.asgi:application"], settings)
    assert argv[argv.index("--websocket_connect_timeout") + 1] == "60"

    given = daphne_arguments(["--websocket_connect_timeout", "7", "app"], settings)
    assert given.count("--websocket_connect_timeout") == 1


def test_listening_endpoints_get_the_backlog_unless_they_have_one() -> None:
    assert with_backlog("tcp:port=8000:interface=127.0.0.1", 4096) == (
        "tcp:port=8000:interface=127.0.0.1:backlog=4096"
    )
    assert with_backlog("unix:/tmp/web.sock", 10) == "unix:/tmp/web.sock:backlog=10"
    assert with_backlog("tcp:port=8000:backlog=5", 4096) == "tcp:port=8000:backlog=5"
    assert with_backlog("fd:fileno=3", 4096) == "fd:fileno=3"


async def test_only_connections_that_left_or_ended_are_checked(reactor: FakeReactor) -> None:
    web = ChatServer(application=None, endpoints=["tcp:port=0"], application_close_timeout=10)
    loop = asyncio.get_running_loop()
    idle, left, ended, stuck = Protocol(), Protocol(), Protocol(), Protocol()
    running = [asyncio.create_task(asyncio.sleep(3600)) for _ in range(3)]
    finished = loop.create_future()
    finished.set_result(None)
    now = time.time()
    web.connections = {
        idle: {"connected": now, "application_instance": running[0]},
        left: {"connected": now, "application_instance": running[1]},
        ended: {"connected": now, "application_instance": finished},
        stuck: {"connected": now, "application_instance": running[2]},
    }
    web.to_check = {left, ended, stuck}
    web.protocol_disconnected(left)
    web.protocol_disconnected(stuck)
    web.connections[stuck]["disconnected"] = now - 11  # past application_close_timeout
    running[1].cancel()  # the application of the connection that left ends
    await asyncio.sleep(0)

    web.application_checker()

    assert set(web.connections) == {idle, ended, stuck}  # `left` is reaped
    assert "application_instance" not in web.connections[ended]  # reaped, still connected
    assert web.to_check == {stuck}  # it took too long: cancelled, not yet reaped
    assert reactor.scheduled == [(1, web.application_checker)]
    await asyncio.sleep(0)
    assert running[2].cancelled()

    web.application_checker()

    assert set(web.connections) == {idle, ended}
    assert web.to_check == set()
    running[0].cancel()


async def test_an_application_that_ends_is_checked_and_its_error_reported(
    reactor: FakeReactor,
) -> None:
    web = ChatServer(application=None, endpoints=["tcp:port=0"])
    protocol = Protocol()
    web.connections = {protocol: {"connected": time.time()}}
    failure = RuntimeError("boom")

    async def application(**_: Any) -> None:
        raise failure

    web.application = application
    web.create_application(protocol, {"type": "websocket"})
    await asyncio.sleep(0)  # the application runs, fails, and its done callback runs
    await asyncio.sleep(0)
    assert web.to_check == {protocol}

    web.application_checker()

    assert protocol.exceptions == [failure]
    # Reaped, still connected; its request id stays for Daphne's lines about it (config/logs.py).
    assert web.connections[protocol].keys() == {"connected", "request_id"}


async def test_every_connection_is_checked_once_a_minute(
    reactor: FakeReactor, monkeypatch: pytest.MonkeyPatch
) -> None:
    web = ChatServer(application=None, endpoints=["tcp:port=0"])
    protocol = Protocol()
    finished = asyncio.get_running_loop().create_future()
    finished.set_result(None)
    web.connections = {protocol: {"connected": time.time(), "application_instance": finished}}
    web.application_checker()  # not known to need it: untouched
    assert "application_instance" in web.connections[protocol]

    monkeypatch.setattr(server.time, "monotonic", lambda: web.next_full_check)
    web.application_checker()

    assert "application_instance" not in web.connections[protocol]


def test_autobahns_per_connection_debug_text_is_made_only_when_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pprint

    from autobahn.websocket import protocol

    # Restored after the test, whatever the function changes.
    monkeypatch.setattr(protocol, "pformat", protocol.pformat)
    monkeypatch.setattr(protocol.Timings, "__str__", protocol.Timings.__str__)
    made: list[object] = []
    eager = pprint.pformat

    def counted(value: object) -> str:
        made.append(value)
        return eager(value)

    monkeypatch.setattr(pprint, "pformat", counted)
    server.lazy_autobahn_debug_text()

    options = [("openHandshakeTimeout", 60, "WebSocketServerFactory")] * 12
    text = protocol.pformat(options)  # what _connectionMade passes to log.debug
    assert made == []
    assert "\n{attrs}".format(attrs=text) == "\n" + eager(options)  # noqa: UP032 - as txaio does
    assert made == [options]

    timings = protocol.Timings()
    timings.track("onOpen")
    assert str(timings) == eager(timings._timings)
