"""Placeholder: replaced by the accounts work (websocket authentication)."""

from channels.auth import AuthMiddlewareStack as WebsocketAuthMiddleware  # noqa: F401
