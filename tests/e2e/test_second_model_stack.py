"""The second model end to end, as `INFERENCE_SERVE_MODELS=smollm2-135m,gemma3-270m make run`
serves it: Daphne, the default model's worker, and a worker of its own for Gemma 3 270M on
its queue, each engine on its own core. A websocket client asks Gemma and gets its streamed
answer, stored under that model (the plan checks have their own tests: tests/chat/test_plans.py,
tests/api/test_v1_plans.py).

Prepares Gemma into INFERENCE_MODEL_DIR first when it is not there (about 2 minutes, once),
then starts both engines (about 2 minutes on 2 cores).

The stack has a database and a Redis database of its own, `chat_e2e_two_models` and 3 unless
E2E_TWO_MODELS_DATABASE and E2E_TWO_MODELS_REDIS_DB name others (two runs on one machine)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import openai
import psycopg
import pytest
import redis

from api.v1.workers import WORKER_KEY_PATTERN
from chat.model_router import CONFIG_SECONDS
from chatclient.client import ChatClient
from tests.support.stack import REPO, Stack, start_stack

pytestmark = pytest.mark.e2e

SMOLLM = "smollm2-135m"
GEMMA = "gemma3-270m"
GEMMA_QUEUE = f"inference.{GEMMA}"
# Under the by-task policy, the seeded routes send each to one engine: a factual question to
# Gemma (`knowledge`), small talk to SmolLM2 (`small-talk`).
FACT = "What is the capital of France?"
SMALL_TALK = "Hi! How are you doing today?"


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
        database=os.environ.get("E2E_TWO_MODELS_DATABASE", "chat_e2e_two_models"),
        redis_db=int(os.environ.get("E2E_TWO_MODELS_REDIS_DB", "3")),
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


def routing_policy(stack: Stack, strategy: str) -> None:
    code = (
        f"from inference.models import RoutingPolicy\nRoutingPolicy(strategy={strategy!r}).save()"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=REPO,
        env=stack.env,
        check=True,
    )
    time.sleep(CONFIG_SECONDS + 0.5)  # the web process re-reads the policy this often


@pytest.fixture(scope="module")
def by_task(two_model_stack: Stack) -> Iterator[Stack]:
    """The stack under the by-task routing policy, for this module's `auto` tests; the
    default (`cheapest`) is put back afterwards."""
    routing_policy(two_model_stack, "by_task")
    try:
        yield two_model_stack
    finally:
        routing_policy(two_model_stack, "cheapest")


def served_version(stack: Stack, worker: str, model: str) -> str:
    """The version a worker's engine serves, as its ready line names it (docs/models.md)."""
    found = re.search(rf"vLLM engine for {re.escape(model)} (\S+) ready", stack.log(worker))
    assert found, stack.log(worker)[-4000:]
    return found.group(1)


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
    # On an engine error, what Gemma's worker logged (CI once saw its engine OOM-killed).
    assert done is not None and done["type"] == "generation.done", (
        f"{done}; Gemma's worker log:\n{two_model_stack.log('worker-gemma')[-3000:]}"
    )
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


async def test_auto_routes_by_task_to_each_real_engine(by_task: Stack) -> None:
    """`model: "auto"` under the by-task policy (issue 19, chat/model_router.py), with both
    engines live: a factual question goes to Gemma (the seeded `knowledge` route), small talk to
    SmolLM2 (`small-talk`), and each `generation.done` names the engine that wrote it."""
    client = signed_in(by_task)
    async with client.connect() as session:
        done = {}
        for text in (FACT, SMALL_TALK):
            accepted = await session.send(
                text, model="auto", options={"temperature": 0, "max_tokens": 32}
            )
            assert accepted["type"] == "chat.accepted", accepted
            result = await session.collect(accepted["generation_id"], timeout=240)
            assert result.final is not None, result
            done[text] = result.final

    fact, chat = done.values()
    assert fact["type"] == chat["type"] == "generation.done", done
    assert (fact["model"], chat["model"]) == (GEMMA, SMOLLM)
    assert "Paris" in fact["text"] and chat["text"].strip()


def test_the_openai_client_lists_auto_and_is_answered_by_the_real_engines(by_task: Stack) -> None:
    """`auto` through /v1 with the official `openai` client and a key made by POST /api/keys
    (docs/api.md): listed and retrievable beside both real models, and each answer, whole or
    streamed, names the model the router chose and the version its engine serves, never
    `auto`."""
    client = signed_in(by_task)
    key = client.request("POST", "/api/keys", {"name": "two models"})["key"]
    api = openai.OpenAI(base_url=f"{by_task.base_url}/v1", api_key=key, max_retries=0, timeout=240)
    versions = {
        SMOLLM: served_version(by_task, "worker", SMOLLM),
        GEMMA: served_version(by_task, "worker-gemma", GEMMA),
    }

    listed = [model.id for model in api.models.list()]
    auto = api.models.retrieve("auto")
    completion = api.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": FACT}], max_tokens=32, temperature=0
    )
    chunks = list(
        api.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": SMALL_TALK}],
            max_tokens=16,
            temperature=0,
            stream=True,
        )
    )

    assert {SMOLLM, GEMMA, "auto"} <= set(listed) and listed[-1] == "auto", listed
    assert auto.id == "auto" and set((auto.model_extra or {})["routes_to"]) >= {SMOLLM, GEMMA}
    assert completion.model == GEMMA
    assert completion.system_fingerprint == f"{GEMMA}@{versions[GEMMA]}"
    assert "Paris" in (completion.choices[0].message.content or "")
    assert chunks and {chunk.model for chunk in chunks} == {SMOLLM}
    assert {chunk.system_fingerprint for chunk in chunks} == {f"{SMOLLM}@{versions[SMOLLM]}"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    # The bill (the worker's usage record, in the stack's own database) names them too.
    assert billed_models(by_task, client.email or "", count=2) == [GEMMA, SMOLLM]


def billed_models(stack: Stack, email: str, *, count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while True:
        with psycopg.connect(stack.env["DATABASE_URL"]) as connection:
            rows = connection.execute(
                "SELECT u.model FROM inference_usagerecord u JOIN accounts_user a "
                "ON a.id = u.user_id WHERE a.email = %s ORDER BY u.id",
                (email,),
            ).fetchall()
        if len(rows) >= count or time.monotonic() > deadline:
            return [str(model) for (model,) in rows]
        time.sleep(0.5)
