from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings
from pytest_django import Settings

from tests.inference.fakes import FakeClock, FakeStore, RecordingLayer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def layer(clock: FakeClock) -> RecordingLayer:
    return RecordingLayer(clock)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStore]:
    """The chat store's functions replaced by an in-memory double (unit tests only)."""
    fake = FakeStore()
    monkeypatch.setitem(sys.modules, "chat.services", fake.services)
    monkeypatch.setitem(sys.modules, "chat.selectors", fake.selectors)
    yield fake


@pytest.fixture
def stream_settings(settings: Settings) -> Settings:
    settings.INFERENCE_FLUSH_INTERVAL_SECONDS = 0.03
    settings.INFERENCE_CHECKPOINT_SECONDS = 1.0
    settings.INFERENCE_TASK_TIME_LIMIT_SECONDS = 60
    return settings


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory holding the prepared default model: INFERENCE_MODEL_DIR when it is
    already prepared there, else a session cache where the real conversion runs once."""
    from django.conf import settings as django_settings

    from inference.management.commands.prepare_model import (
        TARGET_NAME,
        is_prepared,
        source_fingerprint,
        source_gguf_path,
    )

    configured = Path(django_settings.INFERENCE_MODEL_DIR)
    if is_prepared(configured / TARGET_NAME, source_fingerprint(source_gguf_path())):
        return configured
    root = tmp_path_factory.mktemp("models")
    with override_settings(INFERENCE_MODEL_DIR=root):
        call_command("prepare_model", stdout=io.StringIO())
    return root


@pytest.fixture(scope="session")
def prepared_model_dir(model_root: Path) -> Path:
    from inference.management.commands.prepare_model import TARGET_NAME

    return model_root / TARGET_NAME
