from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings
from pytest_django import Settings

from chat.generation import lifecycle
from inference import prepare
from tests.inference.fakes import (
    FakeClock,
    FakeStore,
    PassThroughModerator,
    RecordingLayer,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def layer(clock: FakeClock) -> RecordingLayer:
    return RecordingLayer(clock)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStore]:
    """The generation's store writes and the reads of the worker replaced by an in-memory
    double (unit tests only)."""
    fake = FakeStore()
    monkeypatch.setattr(lifecycle, "checkpoint", fake.generation_checkpoint)
    monkeypatch.setattr(lifecycle, "finish", fake.generation_finish)
    monkeypatch.setattr(prepare, "selectors", fake.selectors)
    yield fake


@pytest.fixture
def stream_settings(settings: Settings) -> Settings:
    settings.INFERENCE_FLUSH_INTERVAL_SECONDS = 0.03
    settings.INFERENCE_CHECKPOINT_SECONDS = 1.0
    settings.INFERENCE_HEARTBEAT_SECONDS = 5.0
    settings.INFERENCE_PROGRESS_SECONDS = 2.0
    settings.INFERENCE_TASK_TIME_LIMIT_SECONDS = 60
    settings.INFERENCE_IGNORE_EOS = False
    return settings


@pytest.fixture
def empty_store() -> Iterator[None]:
    """The in-memory conversation store without other tests' messages (the reaper reads
    every owner's)."""
    from chat.store import MESSAGES, get_db

    get_db()[MESSAGES].delete_many({})
    yield
    get_db()[MESSAGES].delete_many({})


@pytest.fixture
def billing(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Usage records written, in memory (unit tests; the real table has its own tests)."""
    from inference import services

    written: list[dict[str, Any]] = []

    def record(**fields: Any) -> dict[str, Any]:
        written.append(fields)
        return fields

    monkeypatch.setattr(services, "usage_record_create", record)
    return written


@pytest.fixture
def moderator() -> PassThroughModerator:
    return PassThroughModerator()


@pytest.fixture
def delta_log() -> list[tuple[str, int, str]]:
    """What the stream recorded for resume, in order (instead of Redis)."""
    return []


def vllm_pids() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "VLLM"], capture_output=True, text=True, check=False)
    return {int(pid) for pid in found.stdout.split()}


@pytest.fixture(scope="session")
def real_engine(prepared_model_dir: Path) -> Iterator[Any]:
    """The REAL vLLM engine with the default model, started once per session (about 25 s on
    this CPU) and shut down at the end, leaving none of its processes behind."""
    from inference.engine import EngineSpec, host

    spec = EngineSpec(
        name="smollm2-135m",
        weights=str(prepared_model_dir),
        tokenizer=str(prepared_model_dir),
        max_model_len=8192,
    )
    engine = host.engine_for(spec)
    children = host.child_pids
    assert children, "the engine should run in child processes"
    try:
        yield engine
    finally:
        host.shutdown()
        # Only our own engine's processes: other engineers may run theirs on this machine.
        assert not children & vllm_pids(), "VLLM:: processes were left running"


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
