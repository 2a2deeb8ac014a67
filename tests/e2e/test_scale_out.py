"""Scale out on one machine: two Daphne processes and two inference workers on the same
Redis, PostgreSQL and store. An answer streamed through one web process is resumed through the
other with no gap, and answers are served by whichever worker is up."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from typing import Any

import pytest

from chatclient.client import ChatClient, GenerationResult
from tests.support.stack import Stack, daphne_argv, free_port

pytestmark = pytest.mark.e2e

# Long enough to outlast the switch (output moderation releases text a sentence at a time).
OPTIONS = {"max_tokens": 200, "temperature": 0.0}


def _second_web(stack: Stack) -> str:
    """Start a second Daphne on the stack; its base URL."""
    port = free_port()
    stack.start_process("web2", daphne_argv(port=port))
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=5) as response:
                if response.status == 200:
                    return base_url
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def test_an_answer_streamed_through_one_web_process_resumes_through_the_other(
    live_stack: Stack,
) -> None:
    second_url = _second_web(live_stack)
    first = ChatClient(live_stack.base_url)
    first.register(f"scale-{time.time_ns()}@example.com", "correct horse battery staple 42")
    first.login()
    second = ChatClient(second_url, token=first.token)

    async def converse() -> tuple[list[dict[str, Any]], GenerationResult]:
        session = await first.open()
        accepted = await session.send(
            "Write a long story about a lighthouse keeper and a storm.", options=OPTIONS
        )
        generation_id = accepted["generation_id"]
        seen: list[dict[str, Any]] = []
        while not seen:
            frame = await session.wait_for(
                lambda m: (
                    m.get("generation_id") == generation_id
                    and m["type"] in {"generation.delta", "generation.done", "generation.error"}
                )
            )
            assert frame["type"] == "generation.delta", frame  # still streaming: a real resume
            seen.append(frame)
        await session.close()  # web 1 is left; the answer goes on being generated
        resumed = await second.open()
        await resumed.send_frame(
            {
                "type": "generation.subscribe",
                "generation_id": generation_id,
                "after_seq": seen[-1]["seq"],
            }
        )
        rest = await resumed.collect(generation_id)
        await resumed.close()
        return seen, rest

    seen, rest = asyncio.run(converse())

    assert rest.final is not None and rest.final["type"] == "generation.done", rest.final
    seqs = [d["seq"] for d in seen] + [d["seq"] for d in rest.deltas]
    assert seqs == list(range(1, len(seqs) + 1)), seqs  # no gap, no repeat across processes
    streamed = "".join(d["text"] for d in seen) + "".join(d["text"] for d in rest.deltas)
    assert streamed == rest.final["text"] and rest.deltas


def test_answers_are_served_by_the_second_worker_when_the_first_stops(live_stack: Stack) -> None:
    live_stack.start_worker(name="worker2")
    client = ChatClient(live_stack.base_url)
    client.register(f"workers-{time.time_ns()}@example.com", "correct horse battery staple 42")
    client.login()

    async def ask(question: str) -> GenerationResult:
        async with client.connect() as session:
            accepted = await session.send(question, options={"max_tokens": 8})
            return await session.collect(accepted["generation_id"], timeout=300)

    before = asyncio.run(ask("Say hello."))
    live_stack.stop_process("worker")  # a warm shutdown: it finishes what it runs
    logged = len(live_stack.log("worker2"))
    after = asyncio.run(ask("Say goodbye."))

    assert before.final is not None and before.final["type"] == "generation.done"
    assert after.final is not None and after.final["type"] == "generation.done"
    # Only the second worker was left to take it.
    assert "Task inference.generate[" in live_stack.log("worker2")[logged:]
