from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection

from tests.support.stack import Stack, start_stack


@pytest.fixture(scope="session", autouse=True)
def redis_emptied() -> None:
    """The test run's own Redis database (tests/settings.py's default REDIS_URL), emptied at
    the start: keys that a failed or killed earlier run left behind (a queue's waiting
    generations, slots) must not change what this run's tests see. The stacks of the
    end-to-end tests and `make run` use other databases; a REDIS_URL given in the environment
    is left alone."""
    if not getattr(settings, "TEST_REDIS_DATABASE_OWNED", False):
        return
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test database, dropped at the end only if no session uses it. Threads
    of this process keep theirs open for reuse (DATABASE_CONN_MAX_AGE, as in a server):
    Channels' shared sync thread, the admission pools, the auth middleware's. They are idle by
    now and no other process uses this run's own test database, so their sessions are ended
    here; otherwise the drop fails and every run leaves its database behind."""
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def catalog_forgotten() -> None:
    """Each test reads the model registry as its database holds it: a snapshot the last test
    left (chat/catalog.py) describes rows its transaction has rolled back."""
    from chat import catalog

    catalog.forget()


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real stack (Daphne, a Celery worker hosting vLLM with the default model, PostgreSQL,
    Redis, the embedded conversation store), started once per test session."""
    stack = start_stack(workdir=tmp_path_factory.mktemp("stack"))
    try:
        yield stack
    finally:
        stack.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the browser tests last: Playwright's sync API leaves an event loop behind in this
    process, and pytest-asyncio's tests that run after it would not be awaited.

    Before them, the modules that use the in-process engine (`real_engine`, which lives until
    the session ends): not before the end-to-end stacks, whose engines with it outgrew the
    machine's memory in CI (stop 26: the two-model stack's Gemma engine was OOM-killed while
    this process held an idle SmolLM2 engine since tests/api)."""
    engine_modules = {item.module for item in items if "real_engine" in item.fixturenames}
    items.sort(
        key=lambda item: (
            item.get_closest_marker("browser") is not None,
            item.module in engine_modules,
        )
    )
