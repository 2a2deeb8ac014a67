"""Checks and a guard-model server used by the moderation tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from moderation.checks import Check, CheckError
from moderation.types import ALLOW, Action, Direction, Verdict


class ExplodingCheck(Check):
    """Always raises, as a library bug or an outage would."""

    name: ClassVar[str] = "exploding"

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        raise RuntimeError("boom")


class UnavailableCheck(Check):
    name: ClassVar[str] = "unavailable"

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        raise CheckError("service down")


class BlockEverythingCheck(Check):
    name: ClassVar[str] = "block_everything"

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        if not text.strip():
            return ALLOW
        return Verdict(Action.BLOCK, categories=("test",), reason="blocks all", matched=text[:20])


class FlagSelfHarmCheck(Check):
    """Flags every non-empty text as self-harm instructions, as a check unsure of a text would."""

    name: ClassVar[str] = "flag_self_harm"

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        if not text.strip():
            return ALLOW
        return Verdict(Action.FLAG, categories=("self-harm/instructions",), score=0.6)


class CountingCheck(Check):
    """Records that it ran (a check after a block must not run)."""

    name: ClassVar[str] = "counting"
    calls: ClassVar[list[str]] = []

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        CountingCheck.calls.append(text)
        return ALLOW


@dataclass
class FakeGuard:
    """Speaks the OpenAI chat-completions API; replies with `reply` (and `logprobs`, an OpenAI
    `choices[0].logprobs`, when set), after `delay` seconds, or with HTTP `status` when set."""

    reply: str = "safe"
    logprobs: dict[str, Any] | None = None
    delay: float = 0.0
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


@contextmanager
def fake_guard_server() -> Iterator[FakeGuard]:
    guard = FakeGuard()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            guard.requests.append({"path": self.path, "body": body})
            time.sleep(guard.delay)
            if guard.status != 200:
                self.send_response(guard.status)
                self.end_headers()
                return
            payload = json.dumps(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "model": body.get("model"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": guard.reply},
                            "logprobs": guard.logprobs,
                        }
                    ],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    guard.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield guard
    finally:
        server.shutdown()
        server.server_close()


class FakeClock:
    """A monotonic clock (seconds) that moves only when told: stands in for
    `moderation.pipeline.clock`, so the time budget is tested without real time."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance_ms(self, milliseconds: float) -> None:
        self.now += milliseconds / 1000


CLOCK = FakeClock()


class SlowCheck(Check):
    """Takes `cost_ms` of `CLOCK`'s time on texts containing "slow", 1 ms on others; allows all."""

    name: ClassVar[str] = "slow"
    cost_ms: ClassVar[float] = 5_000.0
    calls: ClassVar[list[str]] = []

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        SlowCheck.calls.append(text)
        CLOCK.advance_ms(self.cost_ms if "slow" in text else 1.0)
        return ALLOW
