"""A tiny ASGI app for the websocket auth tests: the real middleware in front of a consumer
that uses `accept_or_reject` like the chat consumer and answers with who it sees.

Served by Daphne in test_ws_auth_live.py, and used in-process by test_ws_auth.py.
"""

from __future__ import annotations

import json

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from accounts.ws_auth import WebsocketAuthMiddleware, accept_or_reject  # noqa: E402


class WhoAmIConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        if not await accept_or_reject(self):
            return
        user = self.scope["user"]
        await self.send(json.dumps({"email": user.email, "method": self.scope["auth_method"]}))


websocket_routes = URLRouter([path("ws/test/", WhoAmIConsumer.as_asgi())])
application = ProtocolTypeRouter(
    {"http": django_asgi_app, "websocket": WebsocketAuthMiddleware(websocket_routes)}
)
