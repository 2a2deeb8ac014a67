"""The reference client of the chat protocol (`docs/protocol.md`), and a command-line chat on it.

A package of its own, apart from the server: it speaks only the public contract (REST for
accounts and tokens, the `/ws/chat/` websocket) and imports nothing from the server's apps or
Django (`tests/test_import_rules.py` checks it). `chatclient.client` holds the client;
`chatclient.cli` the command-line chat, run with `python -m chatclient`.
"""

from chatclient.client import (
    FATAL_CLOSE_CODES,
    FINAL_TYPES,
    ApiRequestError,
    ChatClient,
    ChatSession,
    GenerationResult,
    ResilientChat,
    StreamEvent,
    backoff_delays,
)

__all__ = [
    "FATAL_CLOSE_CODES",
    "FINAL_TYPES",
    "ApiRequestError",
    "ChatClient",
    "ChatSession",
    "GenerationResult",
    "ResilientChat",
    "StreamEvent",
    "backoff_delays",
]
