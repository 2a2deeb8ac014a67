from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import Stack, start_stack


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
    process, and pytest-asyncio's tests that run after it would not be awaited."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
