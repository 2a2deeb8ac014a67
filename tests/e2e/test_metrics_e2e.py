"""`/metrics` on the real stack: a chat over a websocket, answered by vLLM on the Celery
worker, shows up in the web process's scrape (the worker's samples merged through
PROMETHEUS_MULTIPROC_DIR), with the open connection, moderation and a refused flood."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatclient.client import ApiRequestError, ChatClient
from tests.e2e.metrics_support import staff_client, user_client
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: ChatClient) -> Samples:
    text = client.request("GET", "/metrics")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for (found, got), value in samples.items() if found == name and wanted <= got)


def eventually(
    client: ChatClient, holds: Callable[[Samples], bool], timeout: float = 20
) -> Samples:
    """The first scrape for which `holds` is true (the worker bills after the closing message,
    so its samples may land a moment after the client has the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(client)
        if holds(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.25)


def test_a_chat_on_the_real_stack_shows_in_one_scrape_of_every_process(live_stack: Stack) -> None:
    ops = staff_client(live_stack)
    before = scrape(ops)
    user = user_client(live_stack)

    async def converse() -> tuple[dict, object, Samples, list[dict]]:
        async with user.connect() as session:
            open_scrape = await asyncio.to_thread(scrape, ops)
            accepted = await session.send("Name three colours.", options={"max_tokens": 24})
            result = await session.collect(accepted["generation_id"])
            for _ in range(30):  # past CHAT_FRAMES_PER_SECOND_PER_CONNECTION (10)
                await session.send_frame({"type": "ping"})
            answers = [await session.receive() for _ in range(30)]
            return accepted, result, open_scrape, answers

    _, result, open_scrape, answers = asyncio.run(converse())
    model = next(m["name"] for m in user.request("GET", "/api/models")["results"] if m["default"])
    usage = result.final["usage"]

    def billed(samples: Samples) -> bool:
        return total(samples, "chat_generations_total", model=model) > total(
            before, "chat_generations_total", model=model
        )

    after = eventually(ops, billed)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert total(open_scrape, "chat_websocket_connections") >= 1 + total(
        before, "chat_websocket_connections"
    )
    assert grew("chat_generations_total", model=model) == 1
    assert grew("chat_time_to_first_token_seconds_count", model=model) == 1
    assert grew("chat_queue_wait_seconds_count", model=model) == 1
    assert grew("chat_inter_token_latency_seconds_count", model=model) >= 1
    assert grew("chat_tokens_total", model=model, direction="out") == usage["completion_tokens"]
    assert grew("chat_tokens_total", model=model, direction="in") == usage["prompt_tokens"]
    allowed = {"stage": "input", "category": "none", "action": "allow"}
    assert grew("chat_moderation_decisions_total", **allowed) >= 1
    refused = [answer for answer in answers if answer.get("code") == "rate_limited"]
    assert refused and grew("chat_rate_limit_refusals_total", limit="frames") >= len(refused)
    closed = eventually(
        ops,
        lambda samples: (
            total(samples, "chat_websocket_connections")
            == total(before, "chat_websocket_connections")
        ),
    )
    assert total(closed, "chat_websocket_connections") == total(
        before, "chat_websocket_connections"
    )
    print(
        f"time to first token sum {grew('chat_time_to_first_token_seconds_sum', model=model):.3f} s"
        f", vllm metrics merged: {sum(1 for name, _ in after if name.startswith('vllm:'))}"
    )


def test_metrics_refuse_anonymous_and_non_staff_callers(live_stack: Stack) -> None:
    anonymous = ChatClient(live_stack.base_url)
    with pytest.raises(ApiRequestError) as unauthenticated:
        anonymous.request("GET", "/metrics")
    with pytest.raises(ApiRequestError) as forbidden:
        user_client(live_stack).request("GET", "/metrics")

    assert unauthenticated.value.status == 401
    assert forbidden.value.status == 403
