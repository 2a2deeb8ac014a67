"""A scripted server for the browser app, inside Playwright's request routing.

The real-stack tests (test_chat_e2e.py) cannot make the server busy, rate-limit, moderate or
drop a connection on cue. These tests serve the real build from frontend/dist and play the
server's side of PROTOCOL.md message by message, so each of those states is reached exactly.
The origin is `*.localhost`, which Chromium treats as a secure context (clipboard works).
"""

from __future__ import annotations

import json
import mimetypes
import re
import time
from pathlib import Path
from typing import Any

ORIGIN = "http://app.localhost"
WS_URL = "ws://app.localhost/ws/chat/"
USER = {"id": 1, "email": "ada@example.com"}
MODELS = [
    {
        "name": "small",
        "display_name": "Small model",
        "description": "Fast",
        "context_length": 8192,
        "max_output_tokens": 1024,
        "default": True,
    },
    {
        "name": "large",
        "display_name": "Large model",
        "description": "Better",
        "context_length": 32768,
        "max_output_tokens": 4096,
        "default": False,
    },
]


def iso(seconds: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        + f".{int(seconds * 1000) % 1000:03d}Z"
    )


class FakeBackend:
    def __init__(self, page: Any, dist: Path) -> None:
        self.page = page
        self.dist = dist
        self.sockets: list[Any] = []
        self.frames: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, Any]] = []
        self.conversations: dict[str, dict[str, Any]] = {}
        self.usage: dict[str, Any] | None = None
        self.hold_models = False  # leave GET /api/models unanswered until release_models()
        self.held_models: list[Any] = []
        page.route(re.compile(r"^http://app\.localhost/.*"), self._http)
        page.route_web_socket(WS_URL, self._socket)

    # --- HTTP ---------------------------------------------------------------------------------
    def release_models(self) -> None:
        self.hold_models = False
        for route in self.held_models:
            self._json(route, {"results": MODELS, "next_cursor": None})
        self.held_models.clear()

    def _json(self, route: Any, body: Any, status: int = 200) -> None:
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

    def _http(self, route: Any) -> None:
        request = route.request
        path = request.url.removeprefix(ORIGIN).split("?", 1)[0]
        body = request.post_data_json if request.post_data else None
        self.requests.append((request.method, path, body))
        if path.startswith("/static/"):
            file = self.dist / path.removeprefix("/static/")
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            route.fulfill(status=200, content_type=kind, body=file.read_bytes())
        elif path == "/api/auth/csrf":
            self._json(route, {"csrf_token": "test-token"})
        elif path == "/api/auth/me":
            self._json(route, USER)
        elif path == "/api/models" and self.hold_models:
            self.held_models.append(route)
        elif path == "/api/models":
            self._json(route, {"results": MODELS, "next_cursor": None})
        elif path == "/api/usage":
            if self.usage is None:
                self._json(route, {"error": {"code": "not_found", "message": "No such page."}}, 404)
            else:
                self._json(route, self.usage)
        elif path == "/api/conversations":
            items = [
                {k: c[k] for k in ("id", "title", "model", "updated_at", "archived")}
                for c in self.conversations.values()
            ]
            self._json(route, {"results": items, "next_cursor": None})
        elif m := re.fullmatch(r"/api/conversations/([^/]+)", path):
            conversation = self.conversations.get(m.group(1))
            if conversation is None:
                self._json(
                    route, {"error": {"code": "not_found", "message": "No such conversation."}}, 404
                )
            else:
                self._json(route, conversation)
        elif re.fullmatch(r"/api/messages/[^/]+/feedback", path):
            self._json(route, {"ok": True})
        elif path.startswith("/api/"):
            self._json(route, {"error": {"code": "not_found", "message": "No such page."}}, 404)
        else:
            route.fulfill(
                status=200, content_type="text/html", body=(self.dist / "index.html").read_bytes()
            )

    # --- Websocket ----------------------------------------------------------------------------
    def _socket(self, ws: Any) -> None:
        self.sockets.append(ws)
        ws.on_message(lambda message: self.frames.append(json.loads(message)))

    def push(self, message: dict[str, Any]) -> None:
        """Send one server message on the newest connection."""
        self.sockets[-1].send(json.dumps(message))

    def wait_for_frame(
        self, type_: str, *, after: int = 0, timeout_ms: int = 10_000
    ) -> dict[str, Any]:
        """The first client frame of this type at index >= after, pumping the page's events."""
        deadline = time.monotonic() + timeout_ms / 1000
        while time.monotonic() < deadline:
            for frame in self.frames[after:]:
                if frame.get("type") == type_:
                    return frame
            self.page.wait_for_timeout(20)
        raise AssertionError(f"no {type_} frame; got {[f.get('type') for f in self.frames]}")

    def accept(
        self, send: dict[str, Any], *, conversation_id: str = "c1", n: int = 1
    ) -> dict[str, Any]:
        accepted = {
            "type": "chat.accepted",
            "request_id": send["request_id"],
            "conversation_id": conversation_id,
            "user_message": {
                "id": f"u{n}",
                "parent_id": send.get("parent_id"),
                "content": send.get("content", ""),
                "created_at": iso(time.time()),
            },
            "generation_id": f"g{n}",
            "assistant_message_id": f"a{n}",
        }
        self.push(accepted)
        return accepted

    def stream(self, generation_id: str, pieces: list[str], *, first_seq: int = 1) -> None:
        for offset, text in enumerate(pieces):
            self.push(
                {
                    "type": "generation.delta",
                    "generation_id": generation_id,
                    "seq": first_seq + offset,
                    "text": text,
                }
            )

    def done(self, generation_id: str, text: str, finish_reason: str = "stop") -> None:
        self.push(
            {
                "type": "generation.done",
                "generation_id": generation_id,
                "finish_reason": finish_reason,
                "text": text,
                "usage": {"prompt_tokens": 5, "completion_tokens": 7},
            }
        )


def long_conversation(pairs: int, *, conversation_id: str = "long") -> dict[str, Any]:
    """A stored conversation with `pairs` questions and Markdown answers (code, lists)."""
    start = time.time() - pairs * 60
    messages: list[dict[str, Any]] = []
    parent = None
    for i in range(pairs):
        question = {
            "id": f"q{i}",
            "conversation_id": conversation_id,
            "parent_id": parent,
            "role": "user",
            "content": f"Question {i}: how do I reverse a list in Python, version {i}?",
            "state": "complete",
            "model": "small",
            "created_at": iso(start + i * 60),
            "usage": None,
            "feedback": None,
        }
        answer = {
            "id": f"r{i}",
            "conversation_id": conversation_id,
            "parent_id": f"q{i}",
            "role": "assistant",
            "content": (
                f"Answer **{i}**. There are a few ways:\n\n1. `items.reverse()` in place\n"
                "2. `reversed(items)` as an iterator\n3. slicing\n\n"
                f"```python\nitems = list(range({i}))\nprint(items[::-1])\n```\n\n"
                "Slicing makes a *copy*, so the original list is unchanged."
            ),
            "state": "complete",
            "model": "small",
            "created_at": iso(start + i * 60 + 30),
            "usage": {"prompt_tokens": 20, "completion_tokens": 60},
            "feedback": None,
        }
        messages += [question, answer]
        parent = f"r{i}"
    return {
        "id": conversation_id,
        "title": "A very long conversation",
        "model": "small",
        "updated_at": iso(start + pairs * 60),
        "archived": False,
        "current_leaf_id": parent,
        "messages": messages,
    }
