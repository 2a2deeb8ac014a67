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
"""

from __future__ import annotations

import os
import sys
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server


class ChatServer(Server):
    def run(self) -> None:
        from twisted.internet import reactor

        # The factory exists once run() has started; protocols copy its options per connection.
        reactor.callWhenRunning(self.tune_websocket_factory)
        super().run()

    def tune_websocket_factory(self) -> None:
        self.ws_factory.setProtocolOptions(failByDrop=False)


def daphne_arguments(argv: list[str], settings: Any) -> list[str]:
    """`argv` with the protocol's transport settings added where no flag sets them."""
    defaults = {
        "--websocket-max-message-size": settings.CHAT_MAX_FRAME_BYTES,
        "--websocket-max-frame-size": settings.CHAT_MAX_FRAME_BYTES,
        "--ping-interval": settings.CHAT_WS_PING_INTERVAL_SECONDS,
        "--ping-timeout": settings.CHAT_WS_PING_TIMEOUT_SECONDS,
    }
    given = {arg.split("=", 1)[0] for arg in argv}
    extra = [
        item for flag, value in defaults.items() if flag not in given for item in (flag, str(value))
    ]
    return extra + argv


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.conf import settings

    from config import process

    django.setup()
    from moderation.pipeline import warm

    warm()  # before the server listens: the first users must not wait for the models
    process.tune()
    cli = CommandLineInterface()
    cli.server_class = ChatServer
    cli.run(daphne_arguments(sys.argv[1:] if argv is None else argv, settings))


if __name__ == "__main__":
    main()
