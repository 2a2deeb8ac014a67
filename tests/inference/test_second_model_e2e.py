"""The second registered model, Gemma 3 270M, answers a chat on the REAL vLLM engine (CPU):
prepared by `prepare_model` (its chunks joined, the project's transcript template), hosted
beside whatever engine the session already runs, and streamed through the worker's path
(`generation_run`) from a conversation in the real store to the real Redis channel layer.

About 75 s to start its engine on 2 cores, once the model is prepared (INFERENCE_MODEL_DIR, or
a session cache where the real conversion runs once, about 3 minutes more)."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from pytest_django import Settings

from inference import engine as engine_module
from inference import prepare
from inference.management.commands.prepare_model import MARKER, is_prepared
from inference.models import LanguageModel
from inference.recipes import RECIPES, TRANSCRIPT_STOP
from inference.streaming import generation_run
from tests.inference.conftest import vllm_pids
from tests.inference.test_engine_e2e import assert_consistent_stream, stream_through_the_engine

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("billing"),
]

GEMMA = RECIPES["gemma3-270m"]


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = Path(django_settings.INFERENCE_MODEL_DIR)
    if is_prepared(configured / GEMMA.target, GEMMA.fingerprint()):
        return configured / GEMMA.target
    root = tmp_path_factory.mktemp("gemma")
    with override_settings(INFERENCE_MODEL_DIR=root):
        call_command("prepare_model", GEMMA.model, stdout=io.StringIO())
    return root / GEMMA.target


@pytest.fixture
def gemma_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[engine_module.EngineHost]:
    """An engine host of its own: a session may already host the default model, and a host
    runs one engine. Shut down at the end, leaving none of its processes behind."""
    host = engine_module.EngineHost()
    monkeypatch.setattr(engine_module, "host", host)
    prepare._model_cache.clear()
    children: set[int] = set()
    try:
        yield host
        children = host.child_pids
    finally:
        host.shutdown()
        prepare._model_cache.clear()
    assert children, "the engine should have run in child processes"
    assert not children & vllm_pids(), "VLLM:: processes were left running"


async def test_gemma_answers_a_stored_chat_through_the_real_engine(
    settings: Settings, gemma_dir: Path, gemma_host: engine_module.EngineHost
) -> None:
    from chat import selectors, services

    settings.INFERENCE_FLUSH_INTERVAL_SECONDS = 0.03
    assert (gemma_dir / MARKER).is_file()
    owner_id = 900_000 + uuid.uuid4().int % 100_000

    def arrange() -> dict[str, Any]:
        # The registry row as migration 0005 seeds it (transactional tests may have flushed
        # it), enabled and pointed at the prepared directory.
        LanguageModel.objects.update_or_create(
            name=GEMMA.model,
            defaults={
                "display_name": "Gemma 3 270M (base)",
                "weights": str(gemma_dir),
                "context_length": 2048,
                "stop_sequences": list(TRANSCRIPT_STOP),
                "default_top_p": 1.0,
                "default_min_p": 0.05,
                "enabled": True,
            },
        )
        conversation = services.conversation_create(
            owner_id=owner_id, title="Capitals", model=GEMMA.model, system_prompt=None
        )
        user = services.message_create_user(
            conversation_id=conversation["id"],
            owner_id=owner_id,
            parent_id=None,
            content="What is the capital of France?",
            request_id=uuid.uuid4().hex,
        )
        answer = services.message_create_assistant(
            conversation_id=conversation["id"],
            owner_id=owner_id,
            parent_id=user["id"],
            model=GEMMA.model,
            options={"temperature": 0, "max_tokens": 48},
        )
        connection.close()  # this thread's: the test database is dropped at the end
        return answer

    assistant = await asyncio.to_thread(arrange)
    generation_id = assistant["generation_id"]

    def run() -> None:
        gemma_host.run(generation_run(generation_id=generation_id, owner_id=owner_id), timeout=300)

    events = await stream_through_the_engine(generation_id, run)

    done = assert_consistent_stream(events)
    assert gemma_host.spec is not None and gemma_host.spec.name == GEMMA.model
    # The transcript's next "User:" line is where the answer stops, not the token limit.
    assert done["finish_reason"] == "stop"
    assert "User:" not in done["text"]
    assert "Paris" in done["text"]
    stored = await asyncio.to_thread(
        selectors.message_by_generation, generation_id=generation_id, owner_id=owner_id
    )
    assert (stored["state"], stored["content"], stored["model"]) == (
        "complete",
        done["text"],
        GEMMA.model,
    )
