"""A canary version on the real stack (Daphne, the Celery worker with vLLM, PostgreSQL, Redis):
set up with `manage.py model_version` while everything runs, its answers record it (the
stored message, `generation.done`, the bill), the worker loads its engine beside the active
one without a restart, and once the canary stops, the conversation's next turn is answered by
the active version and the worker drains and unloads the canary's engine."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from chatclient.client import ChatClient
from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.e2e

MODEL = "smollm2-135m"


def manage(stack: Stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=stack.env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def billed_version(stack: Stack, generation_id: str) -> str:
    code = (
        "from inference.models import UsageRecord as U;"
        f"print(U.objects.get(generation_id='{generation_id}').model_version)"
    )
    # The last line: Django's shell first says what it imported.
    return manage(stack, "shell", "-c", code).strip().splitlines()[-1]


def wait_for_log(stack: Stack, text: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in stack.log("worker"):
        assert time.monotonic() < deadline, f"the worker never logged {text!r}"
        time.sleep(1)


def test_a_canary_versions_answers_record_it_and_it_drains_when_stopped(
    live_stack: Stack,
) -> None:
    label = f"canary-{uuid.uuid4().hex[:6]}"
    manage(live_stack, "model_version", "create", MODEL, label, "--from", "v1")
    manage(live_stack, "model_version", "canary", MODEL, label, "--share", "100")
    client = ChatClient(live_stack.base_url)
    client.register(f"canary-{uuid.uuid4().hex[:10]}@example.com", "correct horse battery 42")
    client.login()
    options = {"temperature": 0, "max_tokens": 16}

    async def turn(session: Any, content: str, conversation_id: str | None) -> dict[str, Any]:
        accepted = await session.send(content, conversation_id=conversation_id, options=options)
        assert accepted["type"] == "chat.accepted", accepted
        result = await session.collect(accepted["generation_id"], timeout=300)
        assert result.final is not None and result.final["type"] == "generation.done"
        return {**result.final, "conversation_id": accepted["conversation_id"]}

    async def converse() -> tuple[dict[str, Any], dict[str, Any]]:
        async with client.connect() as session:
            first = await turn(session, "Say hello.", None)
            # The canary stops: the pinned version no longer serves, the active one answers.
            manage(live_stack, "model_version", "stop-canary", MODEL, label)
            await asyncio.sleep(6)  # past the worker's version cache (5 s)
            second = await turn(session, "Again, please.", first["conversation_id"])
            return first, second

    try:
        first, second = asyncio.run(converse())
    finally:
        manage(live_stack, "model_version", "retire", MODEL, label)

    assert first["model_version"] == label
    assert second["model_version"] == "v1"
    conversation = client.request("GET", f"/api/conversations/{first['conversation_id']}")
    stored = [m["model_version"] for m in conversation["messages"] if m["role"] == "assistant"]
    assert stored == [label, "v1"]
    assert billed_version(live_stack, first["generation_id"]) == label
    assert billed_version(live_stack, second["generation_id"]) == "v1"
    worker_log = live_stack.log("worker")
    assert f"vLLM engine for {MODEL} {label} ready" in worker_log
    # Stopped, then retired: the worker drains the canary's engine and unloads it.
    wait_for_log(live_stack, f"unloading the vLLM engine of {MODEL} {label}", timeout=120)
