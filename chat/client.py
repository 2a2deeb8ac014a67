"""A small reference client for the chat protocol (`docs/protocol.md`).

It speaks only the public contract: REST for accounts and tokens, the `/ws/chat/` websocket
with a bearer token for chatting. The end-to-end tests use it, and so can any script:

    client = ChatClient("http://127.0.0.1:8000")
    client.register("me@example.com", "a long passphrase")
    client.login()
    async with client.connect() as session:
        accepted = await session.send("Hello!")
        result = await session.collect(accepted["generation_id"])
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import websockets

FINAL_TYPES = {"generation.done", "generation.error"}


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
        request_id: str | None = None,
        model: str | None = None,
        options: dict[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Send `chat.send`; return the `chat.accepted` (or the refusal) for its request_id."""
        request_id = request_id or uuid.uuid4().hex
        frame: dict[str, Any] = {
            "type": "chat.send",
            "request_id": request_id,
            "conversation_id": conversation_id,
            "content": content,
        }
        if parent_id is not None:
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

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[ChatSession]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with websockets.connect(
            self.ws_url, additional_headers=headers, max_size=2**22, compression=None
        ) as connection:
            yield ChatSession(connection)
