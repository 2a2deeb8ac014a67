"""The second model end to end, as `INFERENCE_SERVE_MODELS=smollm2-135m,gemma3-270m make run`
serves it: Daphne, the default model's worker, and a worker of its own for Gemma 3 270M on
its queue, each engine on its own core. A websocket client asks Gemma and gets its streamed
answer, stored under that model (the plan checks have their own tests: tests/chat/test_plans.py,
tests/api/test_v1_plans.py).

Prepares Gemma into INFERENCE_MODEL_DIR first when it is not there (about 2 minutes, once),
then starts both engines (about 2 minutes on 2 cores)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from api.v1.workers import WORKER_KEY_PATTERN
from chatclient.client import ChatClient
from tests.support.stack import REPO, Stack, start_stack

pytestmark = pytest.mark.e2e

GEMMA = "gemma3-270m"
GEMMA_QUEUE = f"inference.{GEMMA}"


def served_queues(stack: Stack) -> set[str]:
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    queues: set[str] = set()
    for key in client.scan_iter(match=WORKER_KEY_PATTERN):
        queues |= set(json.loads(client.get(key) or b"{}").get("queues") or [])
    return queues


@pytest.fixture(scope="module")
def two_model_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("two-models")
    # make run's split of the 2 cores: the default model's engine on core 0, Gemma's on 1.
    # A database and a Redis database of its own: start_stack's defaults are the session's
    # live stack's, which it would drop and flush while that stack is still serving.
    stack = start_stack(
        workdir=workdir,
        database="chat_e2e_two_models",
        redis_db=3,
        extra_env={"VLLM_CPU_OMP_THREADS_BIND": "0"},
    )
    try:
        subprocess.run(
            [sys.executable, "manage.py", "prepare_model", "--enable", GEMMA],
            cwd=REPO,
            env=stack.env,
            check=True,
        )
        stack.env = {**stack.env, "VLLM_CPU_OMP_THREADS_BIND": "1"}
        stack.start_worker(name="worker-gemma", queue=GEMMA_QUEUE)
        deadline = time.monotonic() + 300
        while GEMMA_QUEUE not in served_queues(stack):
            assert stack.processes["worker-gemma"].poll() is None, stack.log("worker-gemma")[-4000:]
            assert time.monotonic() < deadline, "Gemma's worker did not become ready"
            time.sleep(1)
        yield stack
    finally:
        stack.stop()


def signed_in(stack: Stack) -> ChatClient:
    client = ChatClient(stack.base_url)
    client.register(f"gemma-{uuid.uuid4().hex[:12]}@example.com", "correct horse battery staple 42")
    client.login()
    return client


async def test_a_websocket_client_chats_with_the_second_model(two_model_stack: Stack) -> None:
    client = signed_in(two_model_stack)
    listed = [model["name"] for model in client.request("GET", "/api/models")["results"]]

    async with client.connect() as session:
        accepted = await session.send(
            "What is the capital of France?",
            model=GEMMA,
            options={"temperature": 0, "max_tokens": 48},
        )
        assert accepted["type"] == "chat.accepted", accepted
        result = await session.collect(accepted["generation_id"], timeout=240)

    assert GEMMA in listed
    done = result.final
    assert done is not None and done["type"] == "generation.done", done
    assert done["finish_reason"] == "stop"
    assert result.streamed_text == done["text"]
    assert "Paris" in done["text"] and "User:" not in done["text"]
    conversation = client.request("GET", f"/api/conversations/{accepted['conversation_id']}")
    (answer,) = [m for m in conversation["messages"] if m["role"] == "assistant"]
    assert (answer["model"], answer["state"], answer["content"]) == (
        GEMMA,
        "complete",
        done["text"],
    )
    assert conversation["model"] == GEMMA
    worker_log = Path(two_model_stack.workdir / "worker-gemma.log").read_text()
    # The engine's line names the version it serves (docs/models.md): Gemma's first, v1.
    assert "vLLM engine for gemma3-270m v1 ready" in worker_log


async def test_auto_routes_by_task_to_each_real_engine(two_model_stack: Stack) -> None:
    """`model: "auto"` under the by-task policy (issue 19, chat/model_router.py), with both
    engines live: a factual question goes to Gemma (the seeded `knowledge` route), small talk to
    SmolLM2 (`small-talk`), and each `generation.done` names the engine that wrote it."""
    from chat.model_router import CONFIG_SECONDS

    def policy(strategy: str) -> None:
        code = (
            "from inference.models import RoutingPolicy\n"
            f"RoutingPolicy(strategy={strategy!r}).save()"
        )
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
            cwd=REPO,
            env=two_model_stack.env,
            check=True,
        )
        time.sleep(CONFIG_SECONDS + 0.5)  # the web process re-reads the policy this often

    client = signed_in(two_model_stack)
    policy("by_task")
    try:
        async with client.connect() as session:
            done = {}
            for text in ("What is the capital of France?", "Hi! How are you doing today?"):
                accepted = await session.send(
                    text, model="auto", options={"temperature": 0, "max_tokens": 32}
                )
                assert accepted["type"] == "chat.accepted", accepted
                result = await session.collect(accepted["generation_id"], timeout=240)
                assert result.final is not None, result
                done[text] = result.final
    finally:
        policy("cheapest")

    fact, chat = done.values()
    assert fact["type"] == chat["type"] == "generation.done", done
    assert (fact["model"], chat["model"]) == (GEMMA, "smollm2-135m")
    assert "Paris" in fact["text"] and chat["text"].strip()
