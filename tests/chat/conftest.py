"""Fixtures for the conversation store: every backend available here, and a clean store."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chat.store import get_db, indexes_ensure, reset_store_for_tests

# A real server joins the contract suite whenever MONGODB_URL points to one.
_SERVER_URL = os.environ.get("MONGODB_URL", "")
_HAS_SERVER = _SERVER_URL.startswith(("mongodb://", "mongodb+srv://"))
STORE_BACKENDS = ["mongomock", "embedded", *(["mongodb"] if _HAS_SERVER else [])]


def store_url_for(backend: str, tmp_path: Path) -> str:
    if backend == "mongodb":
        return _SERVER_URL
    if backend == "embedded":
        return f"embedded://{tmp_path / 'store'}"
    return "mongomock://"


@pytest.fixture(params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest, settings: Any, tmp_path: Path) -> Iterator[str]:
    """The store on each backend in turn, empty; yields the backend's name."""
    backend: str = request.param
    settings.MONGODB_URL = store_url_for(backend, tmp_path)
    if backend == "mongodb":
        settings.MONGODB_DB = f"chat_test_{uuid.uuid4().hex[:8]}"
        indexes_ensure(get_db())
    reset_store_for_tests()
    yield backend
    if backend == "mongodb":
        get_db().client.drop_database(settings.MONGODB_DB)


@pytest.fixture
def clean_store() -> Iterator[None]:
    """The configured store (mongomock in tests), emptied before and after the test."""
    reset_store_for_tests()
    yield
    reset_store_for_tests()
