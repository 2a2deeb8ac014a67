"""Django's PostgreSQL backend whose connection pool checks only connections idle for a while.

Django builds the pool with psycopg_pool's own check on every checkout (or none at all); this
backend swaps in `config.db_pool.check_when_idle` once the pool exists. Used when
settings pool connections (config/settings.py)."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool

from config import db_pool


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self) -> Any:
        pool = super().pool  # type: ignore[misc]  # not in django-stubs yet
        # psycopg_pool keeps its check callback in `_check` (psycopg-pool 3.2 and 3.3).
        if pool is not None and pool._check is ConnectionPool.check_connection:
            pool._check = db_pool.check_when_idle
        return pool
