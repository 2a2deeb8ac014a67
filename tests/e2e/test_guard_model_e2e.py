"""The guard-model check on real traffic: a real websocket client's message goes through Daphne's
input moderation to vLLM's OpenAI-compatible server hosting the served SmolLM2 with the shipped
classification prompt (moderation/data/guard_prompt.json), in place of guard weights (none can
be downloaded here). The model's P(unsafe) against the threshold set in the admin's check
settings decides; with the server gone the check fails closed, as configured."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from chatclient.client import ChatClient
from inference.engine import resolved_dtype
from inference.recipes import DEFAULT_MODEL, RECIPES
from tests.e2e.protocol_support import chat_send, receive, send_and_receive, web_only
from tests.support.stack import REPO, Stack
from tests.support.vllm_server import VllmServer, vllm_openai_server

pytestmark = pytest.mark.e2e

DATABASE = "chat_guard_model"
REDIS_DB = 5
COMPLETIONS = "POST /v1/chat/completions"


@pytest.fixture(scope="module")
def guard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    weights = Path(settings.INFERENCE_MODEL_DIR) / RECIPES[DEFAULT_MODEL].target
    log = tmp_path_factory.mktemp("guard-server") / "vllm.log"
    with vllm_openai_server(weights, log_path=log, dtype=resolved_dtype()) as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, guard_server: VllmServer) -> Iterator[Stack]:
    with web_only(
        tmp_path_factory.mktemp("guard-stack"),
        database=DATABASE,
        redis_db=REDIS_DB,
        extra_env={
            "MODERATION_CHECKS": "pii,rules,guard",
            "MODERATION_GUARD_URL": guard_server.url,
            "MODERATION_GUARD_MODEL": "guard",
            "MODERATION_GUARD_PROMPT_FILE": str(REPO / "moderation/data/guard_prompt.json"),
            "MODERATION_GUARD_FAILURE_POLICY": "closed",
            # A CPU shared with the rest of the suite: the model's answer may take a while.
            "MODERATION_GUARD_TIMEOUT_SECONDS": "30",
            "MODERATION_INPUT_BUDGET_MS": "0",
        },
    ) as stack:
        yield stack


def set_guard_threshold(stack: Stack, threshold: float) -> None:
    """As an operator would in the admin's check settings (published to Daphne on commit)."""
    code = (
        "from moderation.models import CheckSetting;"
        "CheckSetting.objects.update_or_create("
        f"name='guard', defaults={{'threshold': {threshold}}})"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO, env=stack.env, check=True, capture_output=True,
    )  # fmt: skip


def guard_reasons(stack: Stack) -> list[str]:
    code = (
        "from moderation.models import ModerationEvent as E;"
        "[print(r) for r in E.objects.filter(check_name='guard').values_list('reason', flat=True)]"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO, env=stack.env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return [line for line in done.stdout.splitlines() if line.startswith("guard model")]


def signed_in(stack: Stack) -> ChatClient:
    client = ChatClient(stack.base_url)
    client.register(f"guard-{uuid.uuid4().hex[:12]}@example.com", "correct horse battery 42")
    client.login()
    return client


async def send_until(
    client: ChatClient, content: str, wanted: str, *, timeout: float = 60
) -> dict[str, Any]:
    """Send `content` until the reply is of type `wanted` (a threshold changed in the admin
    reaches Daphne within MODERATION_RULES_REFRESH_SECONDS); the last reply."""
    deadline = time.monotonic() + timeout
    async with client.connect() as session:
        while True:
            reply = await send_and_receive(session, chat_send(content))
            while reply["type"] not in {"chat.accepted", "moderation.blocked", "error"}:
                reply = await receive(session, timeout=40)
            if reply["type"] == wanted or time.monotonic() > deadline:
                return reply
            await asyncio.sleep(0.5)


def test_the_served_models_score_against_the_admins_threshold_decides(
    stack: Stack, guard_server: VllmServer
) -> None:
    client = signed_in(stack)
    calls_before = guard_server.log().count(COMPLETIONS)

    # Threshold 0: any P(unsafe) blocks, so the reply shows the model was asked and answered.
    set_guard_threshold(stack, 0.0)
    blocked = asyncio.run(
        send_until(client, "Hello, what is a good name for a cat?", "moderation.blocked")
    )
    assert blocked["type"] == "moderation.blocked", blocked
    assert blocked["categories"] == ["unsafe"]
    assert guard_server.log().count(COMPLETIONS) > calls_before
    # The recorded score is the model's probability, from its log probabilities: strictly
    # between 0 and 1 (a verdict read from the text alone would be exactly 0 or 1).
    scores = [
        float(m) for r in guard_reasons(stack) for m in re.findall(r"P\(unsafe\) ([0-9.]+)", r)
    ]
    assert scores and all(0.0 < s < 1.0 for s in scores), scores

    # Threshold 1: no probability reaches it, and the same message is accepted.
    set_guard_threshold(stack, 1.0)
    accepted = asyncio.run(
        send_until(client, "Hello, what is a good name for a cat?", "chat.accepted")
    )
    assert accepted["type"] == "chat.accepted", accepted
    conversations = client.request("GET", "/api/conversations")["results"]
    assert len(conversations) == 1  # only the accepted message was stored


def test_with_the_guard_server_gone_a_message_is_refused_not_let_through(
    stack: Stack, guard_server: VllmServer
) -> None:
    """Runs last in this module: it stops the server."""
    client = signed_in(stack)
    set_guard_threshold(stack, 1.0)
    assert (
        asyncio.run(send_until(client, "Name a colour.", "chat.accepted"))["type"]
        == "chat.accepted"
    )
    guard_server.stop()
    refused = asyncio.run(
        send_until(client, "Name another colour.", "moderation.blocked", timeout=5)
    )
    assert refused["type"] == "moderation.blocked", refused
    assert refused["categories"] == ["moderation_unavailable"]
    assert "try again" in refused["message"]
    assert len(client.request("GET", "/api/conversations")["results"]) == 1
