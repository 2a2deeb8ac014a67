"""A small reference client for the chat protocol (`docs/protocol.md`).

It speaks only the public contract: REST for accounts and tokens, the `/ws/chat/` websocket
with a bearer token for chatting. The end-to-end tests use it, and so can any script:

    client = ChatClient("http://127.0.0.1:8000")
    client.register("me@example.com", "a long passphrase")
    client.login()
    async with client.connect() as session:
        accepted = await session.send("Hello!")
        result = await session.collect(accepted["generation_id"])

`ResilientChat` adds what a real app needs on a flaky network: it reconnects with exponential
backoff and jitter, re-sends an unanswered `chat.send` with the same `request_id` (the server
answers it once), and resumes a stream with `generation.subscribe` from the last `seq` it saw,
after a reconnect and also on an open connection whose stream went quiet: a running generation
sends `generation.progress` whenever it has published nothing for a couple of seconds, so a
stream silent for `stall_timeout`, or a progress ahead of the last delta, means lost frames.
The command-line chat (`python -m chatclient`, see `chatclient/cli.py`) is built on it; this
module does not import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import websockets

FINAL_TYPES = {"generation.done", "generation.error"}
# Close codes after which reconnecting cannot help: bad credentials, a forbidden origin.
FATAL_CLOSE_CODES = {4401, 4403}


class ApiRequestError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"HTTP {status}: {error.get('code')}: {error.get('message')}")
        self.status = status
        self.body = body


@dataclass
class GenerationResult:
    """Everything the client saw of one generation."""

    generation_id: str
    deltas: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None
    other: list[dict[str, Any]] = field(default_factory=list)
    first_delta_at: float | None = None

    @property
    def streamed_text(self) -> str:
        return "".join(delta["text"] for delta in sorted(self.deltas, key=lambda d: d["seq"]))


class ChatSession:
    """One open websocket. Frames for other generations are kept, not dropped."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.pending: list[dict[str, Any]] = []

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(frame))

    async def close(self) -> None:
        await self.connection.close()

    async def receive(self, timeout: float = 120.0) -> dict[str, Any]:
        if self.pending:
            return self.pending.pop(0)
        raw = await asyncio.wait_for(self.connection.recv(), timeout)
        return dict(json.loads(raw))

    async def send(
        self,
        content: str,
        *,
        conversation_id: str | None = None,
        parent_id: str | None = None,
        new_first_message: bool = False,
        request_id: str | None = None,
        model: str | None = None,
        options: dict[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Send `chat.send`; return the `chat.accepted` (or the refusal) for its request_id.
        `new_first_message`: a new branch at the conversation's root (an explicit null
        `parent_id`, as when the first message is edited)."""
        request_id = request_id or uuid.uuid4().hex
        frame: dict[str, Any] = {
            "type": "chat.send",
            "request_id": request_id,
            "conversation_id": conversation_id,
            "content": content,
        }
        if parent_id is not None or new_first_message:
            frame["parent_id"] = parent_id
        if model is not None:
            frame["model"] = model
        if options is not None:
            frame["options"] = options
        await self.send_frame(frame)
        return await self.wait_for(lambda m: m.get("request_id") == request_id, timeout=timeout)

    async def wait_for(self, predicate: Any, *, timeout: float = 120.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        skipped: list[dict[str, Any]] = []
        try:
            while True:
                message = await self.receive(timeout=max(0.01, deadline - loop.time()))
                if predicate(message):
                    return message
                skipped.append(message)
        finally:
            self.pending[:0] = skipped

    async def collect(self, generation_id: str, *, timeout: float = 180.0) -> GenerationResult:
        """Read this generation's frames until `generation.done` or `generation.error`."""
        loop = asyncio.get_running_loop()
        result = GenerationResult(generation_id=generation_id)
        while result.final is None:
            message = await self.wait_for(
                lambda m: m.get("generation_id") == generation_id, timeout=timeout
            )
            if message["type"] == "generation.delta":
                if result.first_delta_at is None:
                    result.first_delta_at = loop.time()
                result.deltas.append(message)
            elif message["type"] in FINAL_TYPES:
                result.final = message
            else:
                result.other.append(message)
        return result


class ChatClient:
    def __init__(self, base_url: str, *, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.email: str | None = None
        self.password: str | None = None

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + "/ws/chat/"

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        request.add_header("Accept", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                parsed = json.loads(raw)
            except json.JSONDecodeError:
                parsed = {"error": {"code": "http", "message": raw[:200].decode(errors="replace")}}
            raise ApiRequestError(error.code, parsed) from None
        if not raw:
            return None
        return json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()

    def register(self, email: str, password: str) -> dict[str, Any]:
        self.email, self.password = email, password
        return dict(
            self.request("POST", "/api/auth/register", {"email": email, "password": password})
        )

    def login(self, email: str | None = None, password: str | None = None) -> str:
        """Exchange email and password for a bearer token, which later calls use."""
        email = email or self.email
        password = password or self.password
        answer = self.request("POST", "/api/auth/token", {"email": email, "password": password})
        self.token = str(answer["token"])
        return self.token

    async def open(self, **options: Any) -> ChatSession:
        """Open a websocket (close it with `session.close()`)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        options = {"max_size": 2**22, "compression": None, "proxy": None, **options}
        connection = await websockets.connect(self.ws_url, additional_headers=headers, **options)
        return ChatSession(connection)

    @asynccontextmanager
    async def connect(self, **options: Any) -> AsyncIterator[ChatSession]:
        session = await self.open(**options)
        try:
            yield session
        finally:
            await session.close()


def backoff_delays(
    *, base: float = 0.5, cap: float = 30.0, rng: Callable[[], float] = random.random
) -> Iterator[float]:
    """Seconds to wait before each reconnection attempt: exponential, with full jitter.

    Attempt n waits a random time in [0, min(cap, base * 2**n)): a fleet of phones that lost
    the network together does not come back together.
    """
    attempt = 0
    while True:
        yield rng() * min(cap, base * 2**attempt)
        attempt = min(attempt + 1, 32)


@dataclass
class StreamEvent:
    """One thing that happened while asking: `kind` is the frame's type, or `reconnecting`."""

    kind: str
    frame: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0

    @property
    def text(self) -> str:
        return str(self.frame.get("text", ""))


class ResilientChat:
    """One conversation over a connection that comes back after network drops."""

    def __init__(
        self,
        client: ChatClient,
        *,
        conversation_id: str | None = None,
        model: str | None = None,
        options: dict[str, Any] | None = None,
        delays: Callable[[], Iterator[float]] = backoff_delays,
        max_attempts: int = 20,
        idle_timeout: float = 120.0,
        stall_timeout: float = 10.0,
        validate: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.client = client
        self.conversation_id = conversation_id
        self.model = model
        self.options = options
        self.delays = delays
        self.max_attempts = max_attempts
        self.idle_timeout = idle_timeout
        self.stall_timeout = stall_timeout
        self.validate = validate
        self.session: ChatSession | None = None
        self.generation_id: str | None = None
        self.connections_opened = 0

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def drop(self) -> None:
        """Close the connection as a network failure would (for tests and demos)."""
        if self.session is not None:
            self.session.connection.transport.abort()

    async def _connected(self) -> ChatSession:
        if self.session is None:
            # Short keepalive: a dead network is noticed in seconds, not minutes.
            self.session = await self.client.open(ping_interval=10, ping_timeout=10)
            self.connections_opened += 1
        return self.session

    async def stop(self) -> bool:
        """Ask the server to stop the generation being streamed; False when there is none."""
        if self.generation_id is None or self.session is None:
            return False
        with contextlib.suppress(websockets.ConnectionClosed, OSError):
            await self.session.send_frame(
                {"type": "generation.stop", "generation_id": self.generation_id}
            )
            return True
        return False

    async def ask(self, content: str) -> AsyncIterator[StreamEvent]:
        """Send `content`; yield `chat.accepted`, deltas, and the final frame (or the refusal).

        Deltas are yielded once each, in `seq` order, across reconnections. A stream that goes
        silent on an open connection is re-subscribed there (a `resubscribing` event).
        """
        request_id = uuid.uuid4().hex
        frame: dict[str, Any] = {
            "type": "chat.send",
            "request_id": request_id,
            "conversation_id": self.conversation_id,
            "content": content,
        }
        if self.model is not None:
            frame["model"] = self.model
        if self.options is not None:
            frame["options"] = self.options
        accepted: dict[str, Any] | None = None
        last_seq = 0
        delays = self.delays()
        failures = 0
        while True:
            try:
                session = await self._connected()
                if accepted is None:
                    await session.send_frame(frame)  # again after a drop: same request_id
                else:
                    await self._resubscribe(session, accepted["generation_id"], last_seq)
                silent = 0.0
                while True:
                    wait = self.idle_timeout if accepted is None else self.stall_timeout
                    try:
                        message = await session.receive(timeout=wait)
                    except TimeoutError:
                        silent += wait
                        if accepted is None or silent >= self.idle_timeout:
                            raise
                        yield StreamEvent("resubscribing", {"after_seq": last_seq})
                        await self._resubscribe(session, accepted["generation_id"], last_seq)
                        continue
                    silent = 0.0
                    failures = 0
                    delays = self.delays()
                    if self.validate is not None:
                        self.validate(message)
                    kind = message.get("type", "")
                    if kind == "conversation.updated":
                        yield StreamEvent(kind, message)
                    elif accepted is None:
                        if message.get("request_id") != request_id:
                            continue
                        yield StreamEvent(kind, message)
                        if kind != "chat.accepted":
                            return  # error or moderation.blocked: nothing was stored
                        accepted = message
                        self.conversation_id = message["conversation_id"]
                        self.generation_id = message["generation_id"]
                    elif message.get("generation_id") != accepted["generation_id"]:
                        if kind == "error" and message.get("request_id") is None:
                            yield StreamEvent(kind, message)  # e.g. not_found on subscribe
                            return
                    elif kind == "generation.delta":
                        if message["seq"] > last_seq:
                            last_seq = message["seq"]
                            yield StreamEvent(kind, message)
                    elif kind == "generation.progress":
                        if message["seq"] > last_seq:  # deltas were lost on the way
                            yield StreamEvent("resubscribing", {"after_seq": last_seq})
                            await self._resubscribe(session, message["generation_id"], last_seq)
                    else:
                        yield StreamEvent(kind, message)
                        if kind in FINAL_TYPES:
                            self.generation_id = None
                            return
            except (websockets.ConnectionClosed, OSError, TimeoutError) as error:
                await self._forget_session()
                code = getattr(getattr(error, "rcvd", None), "code", None)
                failures += 1
                if code in FATAL_CLOSE_CODES or failures > self.max_attempts:
                    raise
                delay = next(delays)
                yield StreamEvent("reconnecting", {"close_code": code}, delay=delay)
                await asyncio.sleep(delay)

    @staticmethod
    async def _resubscribe(session: ChatSession, generation_id: str, after_seq: int) -> None:
        await session.send_frame(
            {"type": "generation.subscribe", "generation_id": generation_id, "after_seq": after_seq}
        )

    async def _forget_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.close(), 1)
