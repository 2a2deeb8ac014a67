"""The web server's PostgreSQL pool checks a connection before lending it only when it has
been idle for `IDLE_CHECK_SECONDS` (config/db_pool.py), on a real pool and server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from psycopg_pool import ConnectionPool

from config import db_pool
from config.postgresql.base import DatabaseWrapper

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every check that went to the server."""
    seen: list[object] = []
    real = ConnectionPool.check_connection

    def counted(conn: Any) -> None:
        seen.append(conn)
        real(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counted))
    return seen


@pytest.fixture
def pool() -> Iterator[ConnectionPool]:
    settings = dict(connection.settings_dict)
    settings["CONN_MAX_AGE"] = 0
    settings["CONN_HEALTH_CHECKS"] = True
    settings["OPTIONS"] = {"pool": {"min_size": 1, "max_size": 2, "reset": db_pool.returned}}
    wrapper = DatabaseWrapper(settings, alias="pool_check_test")
    built = wrapper.pool
    built.open(wait=True)
    try:
        yield built
    finally:
        wrapper.close_pool()  # type: ignore[attr-defined]  # not in django-stubs yet


def test_the_backend_installs_the_idle_check(pool: ConnectionPool) -> None:
    assert pool._check is db_pool.check_when_idle


def test_a_connection_back_moments_ago_is_lent_without_a_round_trip(
    pool: ConnectionPool, checks: list[object]
) -> None:
    with pool.connection() as first:
        first.execute("SELECT 1")
    assert checks == [first]  # never lent before: it may have waited since the pool opened
    checks.clear()
    with pool.connection() as again:
        assert again is first
        assert again.execute("SELECT 2").fetchone() == (2,)
    assert checks == []


def test_an_idle_connection_is_checked_and_a_dead_one_replaced(
    pool: ConnectionPool, checks: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pool.connection() as first:
        pid = first.info.backend_pid
    # PostgreSQL closes it while it waits in the pool, as a restart or an idle timeout would.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    monkeypatch.setattr(db_pool, "IDLE_CHECK_SECONDS", 0.0)

    with pool.connection() as lent:
        assert lent.execute("SELECT 1").fetchone() == (1,)
        assert lent.info.backend_pid != pid
    assert checks and checks[0] is first
