"""Every client of a burst gets every delta of its answer, in order, and the closing message,
while other connections of the same web process come and go.

Real Daphne, Redis (the channel layer the project configures), PostgreSQL and store; real
websocket clients that send `chat.send` in new conversations, three clients per user. The
worker's side is played by this test: for each accepted generation it logs and publishes
numbered deltas and a closing message to `gen.<id>` through the channel layer, as
`inference.streaming` does, but without an engine, so that a hundred bursts take a minute.
It publishes no `generation.progress`, so nothing but the delivery path itself can make up
for a lost frame. The last test runs fewer bursts through the real worker and engine, with
automatic titles, and checks what each client saw against what was stored.

Before the channel layer was replaced, this lost streams: a consumer that disconnected while
its receive held the list-based layer's process-wide lock took another consumer's message
down with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio
import websockets
from django.conf import settings
from django.utils.module_loading import import_string

from chat.generation.deltas import DELTA_LOG_TTL_SECONDS
from chat.generation.names import delta_log_key
from chat.protocol import GenerationDelta, GenerationDone, Usage, server_message_adapter
from chatclient.client import ChatClient, ChatSession
from tests.e2e.protocol_support import web_only
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

DATABASE = "chat_delivery"
REDIS_DB = 11
BURSTS = int(os.environ.get("DELIVERY_BURSTS", "100"))
CLIENTS = 16
CLIENTS_PER_USER = 3
DELTAS = 8
DELTA_EVERY = 0.02
CHURNING_CONNECTIONS = 4
FRAME_TIMEOUT = 15.0
ENGINE_BURSTS = int(os.environ.get("DELIVERY_ENGINE_BURSTS", "4"))
ENGINE_CLIENTS = 12


@pytest.fixture(scope="module")
def delivery_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    unlimited = "1000000"
    with web_only(
        tmp_path_factory.mktemp("delivery-stack"),
        database=DATABASE,
        redis_db=REDIS_DB,
        extra_env={
            "CHAT_RATE_PER_MINUTE": unlimited,
            "CHAT_DAILY_MESSAGE_QUOTA": unlimited,
            "CHAT_MAX_CONCURRENT_GENERATIONS": unlimited,
            "CHAT_MAX_CONNECTIONS_PER_USER": unlimited,
            "CHAT_MAX_QUEUE_DEPTH": unlimited,
            "REGISTRATION_IP_LIMIT": unlimited,
        },
    ) as stack:
        yield stack


def stack_layer(stack: Stack) -> Any:
    """The project's channel layer (settings.CHANNEL_LAYERS), on the stack's Redis and under
    the stack's prefix (config/settings.py derives it from CACHE_KEY_PREFIX)."""
    config = settings.CHANNEL_LAYERS["default"]
    hosts = [{**host, "address": stack.env["REDIS_URL"]} for host in config["CONFIG"]["hosts"]]
    prefix = f"{stack.env['CACHE_KEY_PREFIX']}:asgi"
    return import_string(config["BACKEND"])(
        **{**config["CONFIG"], "hosts": hosts, "prefix": prefix}
    )


@dataclass
class Seen:
    """What one client received of its generation."""

    generation_id: str = ""
    seqs: list[int] = field(default_factory=list)
    text: str = ""
    final: dict[str, Any] | None = None
    expected_text: str = ""

    @property
    def problem(self) -> str | None:
        if self.final is None:
            return f"no closing message after deltas {self.seqs}"
        if self.seqs != list(range(1, DELTAS + 1)):
            return f"deltas {self.seqs}"
        if self.text != self.final["text"] or self.text != self.expected_text:
            return "streamed text differs from the final text"
        return None


class PlayedWorker:
    """Streams answers to accepted generations the way the worker does: log, then publish."""

    def __init__(self, stack: Stack) -> None:
        self.layer = stack_layer(stack)
        self.redis = redis.asyncio.Redis.from_url(stack.env["REDIS_URL"])

    async def stream(self, generation_id: str) -> str:
        group = f"gen.{generation_id}"
        text = ""
        for seq in range(1, DELTAS + 1):
            piece = f"{generation_id[:6]}-{seq} "
            text += piece
            key = delta_log_key(generation_id)
            await self.redis.rpush(key, f"{seq}:{piece}")
            await self.redis.expire(key, DELTA_LOG_TTL_SECONDS)
            delta = GenerationDelta(generation_id=generation_id, seq=seq, text=piece)
            await self.layer.group_send(group, delta.model_dump(mode="json"))
            await asyncio.sleep(DELTA_EVERY * random.uniform(0.5, 1.5))
        done = GenerationDone(
            generation_id=generation_id,
            finish_reason="stop",
            text=text,
            usage=Usage(prompt_tokens=5, completion_tokens=DELTAS),
        )
        await self.layer.group_send(group, done.model_dump(mode="json"))
        return text

    async def close(self) -> None:
        await self.redis.aclose()
        with contextlib.suppress(Exception):
            await self.layer.flush()


async def one_client(client: ChatClient, worker: PlayedWorker, label: str) -> Seen:
    """Connect, ask in a new conversation, read the answer to its end, disconnect."""
    seen = Seen()
    async with client.connect() as session:
        accepted = await session.send(f"Suggest a name for a pet turtle, idea {label}.", timeout=60)
        assert accepted["type"] == "chat.accepted", accepted
        seen.generation_id = accepted["generation_id"]
        streaming = asyncio.ensure_future(worker.stream(seen.generation_id))
        try:
            await read_answer(session, seen)
        finally:
            seen.expected_text = await streaming
    return seen


async def read_answer(session: ChatSession, seen: Seen) -> None:
    with contextlib.suppress(TimeoutError):
        while seen.final is None:
            frame = await session.wait_for(
                lambda m: m.get("generation_id") == seen.generation_id, timeout=FRAME_TIMEOUT
            )
            server_message_adapter.validate_python(frame)
            if frame["type"] == "generation.delta":
                seen.seqs.append(frame["seq"])
                seen.text += frame["text"]
            elif frame["type"] in ("generation.done", "generation.error"):
                seen.final = frame


async def churn(client: ChatClient, stop: asyncio.Event) -> int:
    """Open and close connections of the same web process as fast as it lets us. Past its
    connection rate each handshake is refused (4429) at once, so this loops fast; a handshake
    the loaded server drops is counted (CHURN_DROPPED) and the loop goes on: what the test
    checks is everyone else's streams, not the churner's."""
    opened = 0
    while not stop.is_set():
        try:
            session = await client.open()
        except (websockets.InvalidHandshake, OSError):
            CHURN_DROPPED.append(1)
            await asyncio.sleep(0.05)
            continue
        opened += 1
        await asyncio.sleep(random.uniform(0, 0.03))
        await session.close()
    return opened


CHURN_DROPPED: list[int] = []


def signed_in(stack: Stack) -> ChatClient:
    client = ChatClient(stack.base_url)
    client.register(f"burst-{uuid.uuid4().hex[:12]}@example.com", "correct horse battery 42")
    client.login()
    return client


def another_login(user: ChatClient) -> ChatClient:
    client = ChatClient(user.base_url)
    client.login(user.email, user.password)
    return client


def test_every_client_of_every_burst_gets_every_delta_and_the_closing_message(
    delivery_stack: Stack,
) -> None:
    users = [signed_in(delivery_stack) for _ in range(-(-CLIENTS // CLIENTS_PER_USER))]
    # Each client of a user logs in on its own, as each device does: every token opens one
    # connection per burst, within the connection rate per credential.
    clients = [another_login(users[index // CLIENTS_PER_USER]) for index in range(CLIENTS)]
    # A user of its own: past its connection rate its handshakes are refused (4429), which
    # must not refuse the connections of the users it churns beside.
    churning_user = signed_in(delivery_stack)

    async def bursts() -> tuple[list[str], int, int]:
        worker = PlayedWorker(delivery_stack)
        problems: list[str] = []
        streams = churned = 0
        try:
            for burst in range(BURSTS):
                stop = asyncio.Event()
                churners = [
                    asyncio.ensure_future(churn(churning_user, stop))
                    for _ in range(CHURNING_CONNECTIONS)
                ]
                try:
                    results = await asyncio.gather(
                        *(
                            one_client(client, worker, f"{burst}.{index}")
                            for index, client in enumerate(clients)
                        )
                    )
                finally:
                    stop.set()
                    churned += sum(await asyncio.gather(*churners))
                streams += len(results)
                problems += [
                    f"burst {burst}, generation {seen.generation_id}: {seen.problem}"
                    for seen in results
                    if seen.problem
                ]
        finally:
            await worker.close()
        return problems, streams, churned

    started = time.monotonic()
    problems, streams, churned = asyncio.run(bursts())
    print(
        f"{streams} streams in {BURSTS} bursts of {CLIENTS} ({CLIENTS_PER_USER} per user), "
        f"{churned} other connections opened and closed meanwhile "
        f"({len(CHURN_DROPPED)} of their handshakes dropped), "
        f"{len(problems)} lost or damaged, {time.monotonic() - started:.0f} s"
    )
    assert streams == BURSTS * CLIENTS
    assert problems == []


def test_bursts_through_the_real_worker_reach_every_client_whole_and_as_stored(
    live_stack: Stack,
) -> None:
    """New conversations, three clients per user (new users every burst, so that no limit
    refuses a send), titles on, and connections churning beside them."""
    churning_user = signed_in(live_stack)

    async def ask(client: ChatClient, label: str) -> tuple[Seen, str]:
        seen = Seen()
        async with client.connect() as session:
            accepted = await session.send(
                f"Write two sentences about a lighthouse, number {label}.",
                options={"max_tokens": 32},
                timeout=120,
            )
            assert accepted["type"] == "chat.accepted", accepted
            seen.generation_id = accepted["generation_id"]
            await read_answer(session, seen)
        if seen.final is not None:
            seen.expected_text = seen.final["text"]
        return seen, accepted["conversation_id"]

    async def bursts() -> list[tuple[ChatClient, Seen, str]]:
        results = []
        for burst in range(ENGINE_BURSTS):
            users = [signed_in(live_stack) for _ in range(ENGINE_CLIENTS // CLIENTS_PER_USER)]
            clients = [users[i // CLIENTS_PER_USER] for i in range(ENGINE_CLIENTS)]
            stop = asyncio.Event()
            churner = asyncio.ensure_future(churn(churning_user, stop))
            try:
                answers = await asyncio.gather(
                    *(ask(client, f"{burst}.{i}") for i, client in enumerate(clients))
                )
            finally:
                stop.set()
                await churner
            results += [(client, *answer) for client, answer in zip(clients, answers, strict=True)]
        return results

    results = asyncio.run(bursts())

    problems = []
    for client, seen, conversation_id in results:
        # Any number of deltas (the model decides), but every one of them, in order.
        if seen.final is None or seen.seqs != list(range(1, len(seen.seqs) + 1)):
            problems.append(f"{seen.generation_id}: deltas {seen.seqs}, final {seen.final}")
            continue
        stored = client.request("GET", f"/api/conversations/{conversation_id}")
        answer = next(m for m in stored["messages"] if m["role"] == "assistant")
        if not (seen.text == seen.final["text"] == answer["content"]):
            problems.append(f"{seen.generation_id}: streamed, final and stored text differ")
    assert len(results) == ENGINE_BURSTS * ENGINE_CLIENTS
    assert problems == []
