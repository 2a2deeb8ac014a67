"""Faults on the real stack: a worker killed mid-stream, Redis restarted mid-stream.

These tests get a stack of their own, on a private Redis server, because they kill things.
The reaper runs every few seconds here so that a stale generation is noticed quickly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
from websockets.exceptions import ConnectionClosedError

from chat.protocol import server_message_adapter
from chatclient.client import ChatClient, ChatSession
from tests.support.stack import Stack, free_port, start_stack

pytestmark = pytest.mark.e2e

STALE_AFTER = 6
REAP_EVERY = 2
# The engine's stall watchdog: far below its default, far above a step on this machine.
STALL_AFTER = 15
# Prose, and every answer runs to its max_tokens (INFERENCE_IGNORE_EOS in the stack below), so
# the faults below always hit a generation that is still streaming: a model's answer that ends
# early, or ends in invisible end-of-turn tokens, would otherwise finish before the fault.
PROMPT = "Write a long story about a lighthouse keeper and a storm."


class RedisServer:
    """A Redis server of our own that a test may stop and start again on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def fault_stack(
    tmp_path_factory: pytest.TempPathFactory, private_redis: RedisServer
) -> Iterator[Stack]:
    stack = start_stack(
        workdir=tmp_path_factory.mktemp("fault-stack"),
        database=f"chat_e2e_faults_{os.getpid()}",
        redis_url=private_redis.url,
        with_beat=True,
        extra_env={
            "INFERENCE_STALE_AFTER_SECONDS": str(STALE_AFTER),
            "INFERENCE_REAP_INTERVAL_SECONDS": str(REAP_EVERY),
            "INFERENCE_HEARTBEAT_SECONDS": "1",
            "INFERENCE_IGNORE_EOS": "true",
            "INFERENCE_STALL_SECONDS": str(STALL_AFTER),
        },
    )
    yield stack
    stack.stop()


def supervise(stack: Stack, *, settle: float = 60.0) -> None:
    """Restart the stack's Celery processes that exit within `settle` seconds, as a process
    supervisor would. (A worker that gives up first finishes its running task, then shuts its
    engine down: on a 2-core AVX2 machine that took 16 s plus 12 s; one still running after
    `settle` has reconnected.)"""
    restart = {"worker": stack.start_worker, "beat": stack.start_beat}
    deadline = time.monotonic() + settle
    while restart and time.monotonic() < deadline:
        for name in [n for n in restart if stack.processes[n].poll() is not None]:
            stack.stop_process(name)
            restart.pop(name)()
        time.sleep(0.5)


def signed_in(stack: Stack) -> ChatClient:
    client = ChatClient(stack.base_url)
    client.register(f"fault-{uuid.uuid4().hex[:10]}@example.com", "correct horse battery 42")
    client.login()
    return client


async def first_deltas(session: ChatSession, generation_id: str, count: int) -> list[dict]:
    deltas: list[dict] = []
    while len(deltas) < count:
        message = await session.wait_for(lambda m: m.get("generation_id") == generation_id)
        if message["type"] in ("generation.queued", "generation.progress"):
            continue
        assert message["type"] == "generation.delta", message
        deltas.append(message)
    return deltas


async def answer_of(client: ChatClient, content: str, *, timeout: float = 240) -> dict:
    async with client.connect() as session:
        accepted = await session.send(content, options={"max_tokens": 12})
        result = await session.collect(accepted["generation_id"], timeout=timeout)
    assert result.final is not None
    return result.final


def test_a_worker_killed_mid_stream_is_reported_interrupted_and_keeps_the_text(
    fault_stack: Stack,
) -> None:
    client = signed_in(fault_stack)

    async def scenario() -> tuple[dict, dict, float]:
        async with client.connect() as session:
            accepted = await session.send(PROMPT, options={"max_tokens": 400})
            await first_deltas(session, accepted["generation_id"], 1)
            # Past a checkpoint (about once a second), so that the text seen is stored.
            await asyncio.sleep(2.5)
            fault_stack.stop_process("worker", sig=signal.SIGKILL, grace=0)
            killed_at = time.monotonic()
            final = await session.wait_for(
                lambda m: (
                    m.get("generation_id") == accepted["generation_id"]
                    and m["type"] in ("generation.error", "generation.done")
                ),
                timeout=STALE_AFTER + REAP_EVERY + 30,
            )
            return accepted, final, time.monotonic() - killed_at

    accepted, final, waited = asyncio.run(scenario())
    server_message_adapter.validate_python(final)
    assert final["type"] == "generation.error"
    assert final["code"] == "interrupted"
    assert final["text"].strip()
    print(f"interrupted reported {waited:.1f} s after the kill")

    stored = client.request("GET", f"/api/conversations/{accepted['conversation_id']}")
    by_id = {m["id"]: m for m in stored["messages"]}
    assert by_id[accepted["user_message"]["id"]]["content"] == PROMPT
    answer = by_id[accepted["assistant_message_id"]]
    assert answer["state"] == "interrupted"
    assert answer["content"] == final["text"]

    fault_stack.start_worker()
    done = asyncio.run(answer_of(client, "Say hello."))
    assert done["type"] == "generation.done" and done["text"].strip()


def engine_worker_process(stack: Stack) -> psutil.Process:
    """The `VLLM::Worker` process of the stack's Celery worker: the one that computes."""
    worker = psutil.Process(stack.processes["worker"].pid)
    found = [p for p in worker.children(recursive=True) if "VLLM::Worker" in " ".join(p.cmdline())]
    assert len(found) == 1, found
    return found[0]


def test_a_stalled_engine_makes_its_worker_leave_and_the_answer_is_reported_interrupted(
    fault_stack: Stack,
) -> None:
    """The engine's compute process stops (SIGSTOP: alive, making no step) mid-answer. The
    watchdog sees no output for INFERENCE_STALL_SECONDS, the worker leaves and takes its
    engine's processes with it, and the reaper reports the answer interrupted with the text
    streamed so far. A fresh worker then answers."""
    client = signed_in(fault_stack)
    computing = engine_worker_process(fault_stack)

    async def scenario() -> tuple[dict, dict, float]:
        async with client.connect() as session:
            accepted = await session.send(PROMPT, options={"max_tokens": 400})
            await first_deltas(session, accepted["generation_id"], 1)
            await asyncio.sleep(2.5)  # past a checkpoint: the text seen is stored
            computing.suspend()
            stalled_at = time.monotonic()
            final = await session.wait_for(
                lambda m: (
                    m.get("generation_id") == accepted["generation_id"]
                    and m["type"] in ("generation.error", "generation.done")
                ),
                timeout=STALL_AFTER + 60 + STALE_AFTER + REAP_EVERY,
            )
            return accepted, final, time.monotonic() - stalled_at

    try:
        accepted, final, waited = asyncio.run(scenario())
        exit_code = fault_stack.processes["worker"].wait(timeout=30)  # it left
        # Not left behind, suspended, holding its memory.
        assert not computing.is_running() or computing.status() == psutil.STATUS_ZOMBIE
    finally:
        with contextlib.suppress(psutil.Error):
            computing.kill()
    server_message_adapter.validate_python(final)
    assert final["type"] == "generation.error" and final["code"] == "interrupted"
    assert final["text"].strip()
    print(f"interrupted {waited:.1f} s after the engine stalled; worker exit code {exit_code}")
    assert "gave no output for" in fault_stack.log("worker")
    stored = client.request("GET", f"/api/conversations/{accepted['conversation_id']}")
    answer = {m["id"]: m for m in stored["messages"]}[accepted["assistant_message_id"]]
    assert answer["state"] == "interrupted" and answer["content"] == final["text"]

    fault_stack.stop_process("worker")
    fault_stack.start_worker()
    done = asyncio.run(answer_of(client, "Say hello."))
    assert done["type"] == "generation.done" and done["text"].strip()


def test_a_redis_restart_mid_stream_ends_the_generation_and_the_stack_recovers(
    fault_stack: Stack, private_redis: RedisServer
) -> None:
    client = signed_in(fault_stack)

    async def scenario() -> dict:
        async with client.connect() as session:
            # Long enough to be mid-stream when Redis dies, short enough that the worker, which
            # finishes its task before it gives up on the broker, does not take minutes.
            accepted = await session.send(PROMPT, options={"max_tokens": 120})
            generation_id = accepted["generation_id"]
            seen = await first_deltas(session, generation_id, 2)
        private_redis.kill()
        await asyncio.sleep(1)
        private_redis.start()
        # Celery's Redis transport can die on a lost broker (kombu fails to restore unacked
        # messages with the connection gone: "Unrecoverable error ... hostname"); in production
        # the supervisor restarts it (compose: restart: unless-stopped; `make run`: a loop).
        # Do what a supervisor does.
        await asyncio.to_thread(supervise, fault_stack)
        # The old connection may have died with its channel layer: resume on a new one.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                async with client.connect() as session:
                    await session.send_frame(
                        {"type": "generation.subscribe", "generation_id": generation_id,
                         "after_seq": seen[-1]["seq"]}
                    )  # fmt: skip
                    return await session.wait_for(
                        lambda m: (
                            m.get("generation_id") == generation_id
                            and m["type"] in ("generation.error", "generation.done")
                        ),
                        timeout=STALE_AFTER + REAP_EVERY + 30,
                    )
            except (OSError, TimeoutError, ConnectionClosedError):
                # An abnormal close (1011: one of the server's own Redis connections was among
                # the broken ones) means to this client what it means to every client:
                # reconnect and resume (docs/protocol.md).
                await asyncio.sleep(1)
        raise AssertionError("the generation never ended after Redis came back")

    final = asyncio.run(scenario())
    server_message_adapter.validate_python(final)
    assert final["type"] == "generation.done" or final["code"] == "interrupted"

    done = asyncio.run(answer_of(client, "Say hello again."))
    assert done["type"] == "generation.done" and done["text"].strip()
