"""Limits and transport rules on real Daphne, real Redis and a real websocket client: frame
size, compression, keepalive, connections per user, rate/quota/concurrency under parallel
clients, busy, forbidden, too_large, moderation, the public schema."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import urllib.request
import uuid
from collections import Counter

import pytest
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode

from tests.e2e.protocol_support import (
    QUEUE,
    chat_send,
    close_code,
    deactivate,
    new_client,
    receive,
    send_and_receive,
    snapshot,
    stack_redis,
    stored,
    validated,
)
from tests.support.stack import Stack

pytest_plugins = ["tests.e2e.protocol_support"]
pytestmark = pytest.mark.e2e


def test_a_frame_over_64_kib_is_closed_with_1009_however_large_it_is(
    protocol_stack: Stack,
) -> None:
    client = new_client(protocol_stack)

    async def scenario() -> tuple[int | None, int | None, dict]:
        async with client.connect(max_size=None) as big:
            await big.send_frame({"type": "ping", "padding": "x" * 70_000})
            over_limit = await close_code(big)
        async with client.connect(max_size=None) as huge:
            await huge.connection.send("x" * 1_000_000)  # refused before it is buffered
            over_cap = await close_code(huge)
        async with client.connect() as fine:
            await fine.connection.send('{"type": "ping"' + " " * 60_000 + "}")
            pong = await receive(fine)
        return over_limit, over_cap, pong

    over_limit, over_cap, pong = asyncio.run(scenario())

    assert over_limit == 1009
    assert over_cap == 1009
    assert pong == {"type": "pong"}


def test_no_per_message_compression_is_negotiated(protocol_stack: Stack) -> None:
    client = new_client(protocol_stack)

    async def scenario() -> tuple[str | None, list]:
        async with connect(
            protocol_stack.ws_url,
            additional_headers={"Authorization": f"Bearer {client.token}"},
            compression="deflate",  # offers permessage-deflate
            proxy=None,
        ) as connection:
            assert connection.request is not None and connection.response is not None
            assert "permessage-deflate" in connection.request.headers["Sec-WebSocket-Extensions"]
            return (
                connection.response.headers.get("Sec-WebSocket-Extensions"),
                list(connection.protocol.extensions),
            )

    assert asyncio.run(scenario()) == (None, [])


def test_the_handshake_answers_with_the_connection_request_id(protocol_stack: Stack) -> None:
    client = new_client(protocol_stack)
    given = f"mobile-{uuid.uuid4().hex}"

    async def request_id(headers: dict[str, str]) -> str | None:
        async with connect(
            protocol_stack.ws_url,
            additional_headers={"Authorization": f"Bearer {client.token}", **headers},
            proxy=None,
        ) as connection:
            assert connection.response is not None
            return connection.response.headers.get("X-Request-ID")

    # A plausible id the client gives is kept; without one the server chooses one per
    # connection, as for HTTP requests.
    assert asyncio.run(request_id({"X-Request-ID": given})) == given
    chosen = {asyncio.run(request_id({})) for _ in range(2)}
    assert None not in chosen and len(chosen) == 2
    assert given in protocol_stack.log("web")


def test_a_peer_that_stops_answering_pings_is_closed_after_interval_plus_timeout(
    protocol_stack: Stack,
) -> None:
    client = new_client(protocol_stack)
    port = int(protocol_stack.base_url.rsplit(":", 1)[1])
    peer = socket.create_connection(("127.0.0.1", port), timeout=10)
    peer.sendall(
        b"GET /ws/chat/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n" + f"Authorization: Bearer {client.token}\r\n\r\n".encode()
    )
    assert b" 101 " in peer.recv(4096).split(b"\r\n", 1)[0]
    started = time.monotonic()

    # Read (and never answer) until the server gives up on us: pings, then the end.
    received = b""
    with contextlib.suppress(ConnectionResetError):  # dropped: a reset, not a FIN
        while chunk := peer.recv(4096):
            received += chunk
    closed_after = time.monotonic() - started
    peer.close()

    assert b"\x89" in received  # at least one ping frame (opcode 0x9) was sent
    # Not before the interval and the timeout: autobahn's pong timer rounds its deadline down
    # to a whole second (txaio's batched timer), so 3 s waits 2 to 3 s; the interval counts
    # from the TCP accept, a little before the 101 reached us. Measured: 3.4 to 5.3 s.
    assert closed_after > 1 + (3 - 1) - 0.25
    # ... and soon after: interval + timeout + Daphne's 2 s timeout checker, with margin.
    assert closed_after < 1 + 3 + 3


def test_the_connection_past_the_per_user_limit_is_closed_with_4429(
    protocol_stack: Stack,
) -> None:
    client = new_client(protocol_stack)

    async def scenario() -> tuple[dict, int | None, dict]:
        sessions = [await client.open() for _ in range(3)]
        refused = await client.open()
        error = await receive(refused)
        code = await close_code(refused)
        await sessions[0].close()
        await asyncio.sleep(0.5)
        replacement = await client.open()
        pong = await send_and_receive(replacement, {"type": "ping"})
        for session in [*sessions[1:], replacement]:
            await session.close()
        return error, code, pong

    error, code, pong = asyncio.run(scenario())

    assert error["code"] == "rate_limited" and "3 open connections" in error["message"]
    assert code == 4429
    assert pong == {"type": "pong"}


def test_parallel_clients_of_one_user_hit_rate_quota_and_concurrency_limits_exactly(
    protocol_stack: Stack,
) -> None:
    # Limits of this stack: 6 messages a minute, 4 a day, 2 generating at once.
    client = new_client(protocol_stack)

    async def one_connection(frames: list[dict]) -> list[dict]:
        async with client.connect() as session:
            for frame in frames:
                await session.send_frame(frame)
            ids = {frame["request_id"] for frame in frames}
            return [await session.wait_for(lambda m: m.get("request_id") in ids) for _ in frames]

    async def scenario() -> list[dict]:
        frames = [chat_send(f"parallel {n}") for n in range(8)]
        answers = await asyncio.gather(one_connection(frames[:4]), one_connection(frames[4:]))
        return [validated(a) for a in answers[0] + answers[1]]

    answers = asyncio.run(scenario())

    outcome = Counter(
        a["type"] if a["type"] == "chat.accepted" else f"{a['code']}:{'at once' in a['message']}"
        for a in answers
    )
    assert outcome == {
        "chat.accepted": 2,  # the concurrency limit
        "rate_limited:True": 2,  # refused for concurrency (counted against rate and quota)
        "quota_exceeded:False": 2,  # 5th and 6th of the minute: the day's quota of 4 is used
        "rate_limited:False": 2,  # 7th and 8th: over 6 a minute
    }
    for answer in answers:
        if answer["type"] == "error":
            assert answer["retry_after"] >= 1
    assert len(snapshot(client)) == 2


def test_a_full_model_queue_is_answered_busy_and_nothing_is_stored(
    protocol_stack: Stack,
) -> None:
    client = new_client(protocol_stack)
    waiting = stack_redis()
    fillers = {f"filler-{uuid.uuid4().hex}": float(n) for n in range(10_000)}
    waiting.zadd(f"chat:waiting:{QUEUE}", fillers)
    try:

        async def scenario() -> dict:
            async with client.connect() as session:
                return await session.send("Anyone there?")

        refused = asyncio.run(scenario())
    finally:
        waiting.zrem(f"chat:waiting:{QUEUE}", *fillers)

    assert (refused["code"], refused["retry_after"]) == ("busy", 5)
    assert snapshot(client) == []


def test_refusals_of_content_account_and_moderation_store_nothing(
    protocol_stack: Stack,
) -> None:
    client = new_client(protocol_stack)

    async def scenario() -> tuple[dict, dict, dict, dict]:
        async with client.connect() as session:
            # Accepted first: the store must show it, so an empty read cannot pass for nothing.
            kept = await session.send("Keep this one")
            too_large = await session.send("x" * 32_001)
            blocked = await session.send("I want to kill myself tonight")
            deactivate(client.email or "")
            forbidden = await session.send("Hello")
            return kept, too_large, blocked, forbidden

    kept, too_large, blocked, forbidden = asyncio.run(scenario())

    assert kept["type"] == "chat.accepted"
    assert too_large["code"] == "too_large"
    assert blocked["type"] == "moderation.blocked" and blocked["message"]
    assert forbidden["code"] == "forbidden"
    # Read from the stack's store itself (the REST API refuses a deactivated user).
    conversations, messages = stored(protocol_stack, client.email or "")
    assert [c["_id"] for c in conversations] == [kept["conversation_id"]]
    assert sorted(m["_id"] for m in messages) == sorted(
        [kept["user_message"]["id"], kept["assistant_message_id"]]
    )


def test_the_protocol_schema_is_public_json_schema_of_every_message(
    protocol_stack: Stack,
) -> None:
    with urllib.request.urlopen(f"{protocol_stack.base_url}/api/protocol/schema.json") as answer:
        schema = json.loads(answer.read())

    client_types = set(schema["client_to_server"]["discriminator"]["mapping"])
    server_types = set(schema["server_to_client"]["discriminator"]["mapping"])
    assert client_types == {
        "chat.send",
        "generation.stop",
        "generation.regenerate",
        "generation.subscribe",
        "ping",
    }
    assert server_types == {
        "chat.accepted",
        "generation.queued",
        "generation.delta",
        "generation.progress",
        "generation.done",
        "generation.error",
        "moderation.blocked",
        "conversation.updated",
        "error",
        "pong",
    }


def test_invalid_utf8_in_a_text_frame_drops_only_that_connection(protocol_stack: Stack) -> None:
    client = new_client(protocol_stack)

    async def scenario() -> tuple[int | None, dict]:
        async with client.connect() as bystander, client.connect() as offender:
            protocol = offender.connection.protocol
            protocol.send_frame(Frame(Opcode.TEXT, b'{"type": "\xff"}'))
            for data in protocol.data_to_send():
                offender.connection.transport.write(data)
            code = await close_code(offender)
            return code, await send_and_receive(bystander, {"type": "ping"})

    code, pong = asyncio.run(scenario())

    assert code == 1007  # RFC 6455: the server must fail the connection
    assert pong == {"type": "pong"}
    assert snapshot(client) == []
