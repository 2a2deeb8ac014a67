"""The websocket routes, and the connection rate checked before authentication."""

from __future__ import annotations

from typing import Any

from django.urls import path

from accounts.ws_auth import SUBPROTOCOL, presented_credential
from chat import limits
from chat.consumers import CLOSE_TOO_MANY_CONNECTIONS, ChatConsumer, handshake_address
from chat.protocol import Error

websocket_urlpatterns = [path("ws/chat/", ChatConsumer.as_asgi())]


class ConnectRateMiddleware:
    """Refuses a websocket handshake past the process's connection rates
    (`chat.limits.connect_refused`) before authentication runs: accepted, told
    `rate_limited` with `retry_after`, and closed with 4429, all without a database or Redis
    round trip. (A handshake refused with HTTP 429 would reach every client as a bare 1006.)"""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope.get("type") != "websocket":
            return await self.inner(scope, receive, send)
        wait = limits.connect_refused(
            credential=presented_credential(scope), address=handshake_address(scope)
        )
        if wait is None:
            return await self.inner(scope, receive, send)
        await _refuse(scope, receive, send, retry_after=wait)
        return None


async def _refuse(scope: dict[str, Any], receive: Any, send: Any, *, retry_after: int) -> None:
    event = await receive()
    if event.get("type") != "websocket.connect":
        return
    offered = scope.get("subprotocols") or []
    # Answer chat.v1 when offered: a browser fails a handshake whose answer lacks it.
    await send(
        {"type": "websocket.accept", "subprotocol": SUBPROTOCOL if SUBPROTOCOL in offered else None}
    )
    refusal = Error(
        code="rate_limited",
        message="Too many connections opened. Wait before reconnecting.",
        retry_after=retry_after,
    )
    await send({"type": "websocket.send", "text": refusal.model_dump_json(exclude_none=False)})
    await send({"type": "websocket.close", "code": CLOSE_TOO_MANY_CONNECTIONS})
