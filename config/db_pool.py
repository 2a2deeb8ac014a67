"""The PostgreSQL pool's health check, made cheap for connections that were just in use.

Django's pooled backend can have psycopg_pool check every connection before lending it: one
more round trip to PostgreSQL on every checkout. The web process checks a connection out for
each call into synchronous code (a websocket handshake's token lookup, each admission), so the
check was a quarter of a connect storm's CPU (docs/benchmarks.md). A connection returned to the
pool less than `IDLE_CHECK_SECONDS` ago was working then, and one that broke while in use is
discarded by the pool on its return (its status is bad), so only connections idle for longer
are checked: those are the ones a PostgreSQL restart or an idle timeout can have closed.
"""

from __future__ import annotations

import time
import weakref

from psycopg import Connection
from psycopg_pool import ConnectionPool

IDLE_CHECK_SECONDS = 2.0

_returned_at: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()


def returned(connection: Connection) -> None:
    """The pool's `reset` callback: note when the connection came back."""
    _returned_at[connection] = time.monotonic()


def check_when_idle(connection: Connection) -> None:
    """The pool's `check` callback: check a connection idle for `IDLE_CHECK_SECONDS` or more
    (or never returned yet); raise if it does not work, and the pool replaces it."""
    back = _returned_at.get(connection)
    if back is not None and time.monotonic() - back < IDLE_CHECK_SECONDS:
        return
    ConnectionPool.check_connection(connection)
