"""ASGI entry point: HTTP goes to Django, websockets to the chat consumer behind authentication,
both with their request id in every log line and the client address settled from trusted
proxies only."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from config import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Before the handler is built: Django's instrumentation adds a middleware (config/tracing.py).
tracing.configure("chat-web", django=True)
# Django must be set up before anything imports models (consumers, auth middleware).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.ws_auth import WebsocketAuthMiddleware  # noqa: E402
from chat.routing import ConnectRateMiddleware, websocket_urlpatterns  # noqa: E402
from config.logs import RequestIds  # noqa: E402
from config.proxy import ClientAddressMiddleware  # noqa: E402

# Every line of a request or a connection names its request id, the response too
# (config/logs.py); the client's address is settled next, for both protocols (config/proxy.py).
application = RequestIds(
    ClientAddressMiddleware(
        ProtocolTypeRouter(
            {
                "http": django_asgi_app,
                # Connection rates first: a refused handshake costs no authentication.
                "websocket": ConnectRateMiddleware(
                    WebsocketAuthMiddleware(URLRouter(websocket_urlpatterns))
                ),
            }
        )
    )
)
