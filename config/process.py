"""Interpreter tuning for the long-running processes: the web server and the inference worker."""

from __future__ import annotations

import sys

from django.conf import settings


def tune() -> None:
    """Apply `PYTHON_SWITCH_INTERVAL_MS` (see config/settings.py).

    CPython lets a busy thread keep the GIL for the switch interval before a waiting thread
    gets it (5 ms by default). Both processes run short blocking calls (Redis, PostgreSQL, the
    store) on one thread beside busy ones (the event loop, the engine's output handling), and
    every such call can wait that long to get the GIL back: a `chat.send` makes about forty.
    """
    sys.setswitchinterval(settings.PYTHON_SWITCH_INTERVAL_MS / 1000)
