"""The web server's PostgreSQL connections stay within its pool under HTTP traffic.

Under ASGI, Django runs each HTTP request's synchronous code on a thread of its own. With the
production default of persistent connections (DATABASE_CONN_MAX_AGE=60) and no pool, each of
those threads left its connection open: a web process reached PostgreSQL's 100 clients after
about 50 sign-ups and answered 500 from then on (bench/admission.py found it). The web server
now lends connections from a pool (config/server.py, WEB_DATABASE_POOL_MAX_SIZE)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from chatclient.client import ChatClient
from tests.e2e.protocol_support import web_only

pytestmark = pytest.mark.e2e

DATABASE = "chat_db_connections"
REDIS_DB = 4
SIGN_UPS = 80  # well past the 50 that exhausted PostgreSQL before


def connections_to(database: str) -> int:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as pg:
        row = pg.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_sign_ups_with_persistent_connections_stay_within_the_pool(tmp_path: Path) -> None:
    with web_only(
        tmp_path,
        database=DATABASE,
        redis_db=REDIS_DB,
        extra_env={"DATABASE_CONN_MAX_AGE": "60"},  # the production default
    ) as stack:

        def sign_up(_: int) -> str:
            client = ChatClient(stack.base_url)
            client.register(f"pool-{uuid.uuid4().hex[:12]}@example.com", "correct horse 42 pool")
            return client.login()

        with ThreadPoolExecutor(8) as pool:
            tokens = list(pool.map(sign_up, range(SIGN_UPS)))
        held = connections_to(DATABASE)

    assert len(set(tokens)) == SIGN_UPS  # every sign-up and sign-in answered, none 500
    assert 1 <= held <= settings.WEB_DATABASE_POOL_MAX_SIZE, held
