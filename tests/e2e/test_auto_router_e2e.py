"""`model: "auto"` on the real stack (Daphne, a Celery worker hosting vLLM with the default
model, PostgreSQL, Redis): the by-task policy sends a factual question to Gemma 3 270M, which
is enabled here but served by no worker, so the router falls back to SmolLM2, whose real engine
answers; `generation.done`, the stored answer, the usage record and the official `openai`
client's response all name SmolLM2. The policy and Gemma are put back afterwards."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import openai
import psycopg
import pytest

from chat.model_router import CONFIG_SECONDS
from chatclient.client import ChatClient
from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.e2e

MODEL = "smollm2-135m"
FACT = "Who wrote the play Romeo and Juliet?"


def shell(stack: Stack, code: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=REPO,
        env=stack.env,
        check=True,
    )


@pytest.fixture(scope="module")
def by_task(live_stack: Stack) -> Iterator[Stack]:
    shell(
        live_stack,
        "from inference.models import LanguageModel, RoutingPolicy\n"
        "LanguageModel.objects.filter(name='gemma3-270m').update(enabled=True)\n"
        "RoutingPolicy(strategy='by_task', fallback='cheapest', min_similarity=0.0).save()\n",
    )
    time.sleep(CONFIG_SECONDS + 0.5)  # the web process re-reads the policy this often
    try:
        yield live_stack
    finally:
        shell(
            live_stack,
            "from inference.models import LanguageModel, RoutingPolicy\n"
            "LanguageModel.objects.filter(name='gemma3-270m').update(enabled=False)\n"
            "RoutingPolicy(strategy='cheapest').save()\n",
        )
        time.sleep(CONFIG_SECONDS + 0.5)


def account(stack: Stack) -> tuple[ChatClient, str]:
    client = ChatClient(stack.base_url)
    email = f"auto-{uuid.uuid4().hex[:10]}@example.com"
    client.register(email, "correct horse battery staple 42")
    client.login()
    return client, email


def usage_models(stack: Stack, email: str) -> list[str]:
    with psycopg.connect(stack.env["DATABASE_URL"]) as connection:
        return [
            str(model)
            for (model,) in connection.execute(
                "SELECT u.model FROM inference_usagerecord u "
                "JOIN accounts_user a ON a.id = u.user_id WHERE a.email = %s",
                (email,),
            ).fetchall()
        ]


def wait_for_usage(stack: Stack, email: str, count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while len(found := usage_models(stack, email)) < count and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


async def test_auto_falls_back_from_a_model_without_worker_and_done_names_the_real_one(
    by_task: Stack,
) -> None:
    client, email = account(by_task)
    async with client.connect() as session:
        accepted = await session.send(
            FACT, model="auto", options={"temperature": 0, "max_tokens": 32}
        )
        assert accepted["type"] == "chat.accepted", accepted
        result = await session.collect(accepted["generation_id"], timeout=240)

    done = result.final
    assert done is not None and done["type"] == "generation.done", done
    assert done["model"] == MODEL
    assert done["text"].strip() and result.streamed_text == done["text"]
    conversation = client.request("GET", f"/api/conversations/{accepted['conversation_id']}")
    (answer,) = [m for m in conversation["messages"] if m["role"] == "assistant"]
    assert (answer["model"], answer["state"]) == (MODEL, "complete")
    assert wait_for_usage(by_task, email, 1) == [MODEL]
    # The router's first choice was Gemma (the knowledge route), which no worker serves.
    assert f"auto routed to {MODEL} (fallback_no_worker, route knowledge)" in by_task.log("web")


def test_the_openai_client_asks_for_auto_and_is_told_the_model_used(by_task: Stack) -> None:
    client, email = account(by_task)
    key = client.request("POST", "/api/keys", {"name": "e2e"})["key"]
    api = openai.OpenAI(base_url=f"{by_task.base_url}/v1", api_key=key, max_retries=0, timeout=120)

    completion = api.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": FACT}], max_tokens=24, temperature=0
    )
    chunks = list(
        api.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "Say hello to me."}],
            max_tokens=16,
            stream=True,
        )
    )

    assert completion.model == MODEL
    assert completion.choices[0].message.content and completion.usage is not None
    assert chunks and {chunk.model for chunk in chunks} == {MODEL}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    assert wait_for_usage(by_task, email, 2) == [MODEL, MODEL]
