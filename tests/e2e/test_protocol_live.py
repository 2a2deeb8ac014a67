"""The protocol with real answers: the real stack (Daphne, Celery worker, vLLM with the default
model, PostgreSQL, Redis), the reference client and its command line. Generations are kept
short (8-16 tokens) because the engine makes about 30 tokens/s on this machine."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from chat.protocol import server_message_adapter
from chatclient.client import ChatClient, ResilientChat
from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.e2e

SHORT = {"max_tokens": 12, "temperature": 0.0}


def new_client(stack: Stack) -> ChatClient:
    client = ChatClient(stack.base_url)
    client.register(f"live-{uuid.uuid4().hex[:10]}@example.com", "correct horse battery staple 42")
    client.login()
    return client


def validate(frame: dict[str, Any]) -> None:
    server_message_adapter.validate_python(frame)


def test_a_dropped_connection_resumes_the_answer_without_duplicates(live_stack: Stack) -> None:
    client = new_client(live_stack)
    chat = ResilientChat(client, options=SHORT, validate=validate)

    async def converse() -> list[Any]:
        events = []
        dropped = False
        async for event in chat.ask("Count from one to twenty."):
            events.append(event)
            if event.kind == "generation.delta" and not dropped:
                dropped = True
                await chat.drop()  # as a network change would
        await chat.close()
        return events

    events = asyncio.run(converse())

    kinds = [event.kind for event in events]
    assert kinds[0] == "chat.accepted" and "reconnecting" in kinds
    assert kinds[-1] == "generation.done"
    seqs = [event.frame["seq"] for event in events if event.kind == "generation.delta"]
    assert seqs == sorted(set(seqs))  # no delta twice, in order
    streamed = "".join(event.text for event in events if event.kind == "generation.delta")
    final = events[-1].text
    assert final.startswith(streamed) and final.strip()
    assert chat.connections_opened == 2
    stored = client.request("GET", f"/api/conversations/{events[0].frame['conversation_id']}")
    answer = next(m for m in stored["messages"] if m["role"] == "assistant")
    assert answer["content"] == final


def test_regenerate_streams_a_sibling_answer_to_the_same_question(live_stack: Stack) -> None:
    client = new_client(live_stack)

    async def converse() -> tuple[dict, Any, dict, Any]:
        async with client.connect() as session:
            first = await session.send("Name a colour.", options=SHORT)
            first_result = await session.collect(first["generation_id"])
            await session.send_frame(
                {
                    "type": "generation.regenerate",
                    "message_id": first["assistant_message_id"],
                    "request_id": "again-1",
                }
            )
            sibling = await session.wait_for(lambda m: m.get("request_id") == "again-1")
            return first, first_result, sibling, await session.collect(sibling["generation_id"])

    first, first_result, sibling, sibling_result = asyncio.run(converse())

    for frame in [first, sibling, first_result.final, sibling_result.final]:
        validate(frame)
    assert sibling["user_message"]["id"] == first["user_message"]["id"]
    assert sibling_result.final["type"] == "generation.done"
    # Streamed: its text came as deltas, in order, before the final frame.
    assert [d["seq"] for d in sibling_result.deltas] == list(
        range(1, len(sibling_result.deltas) + 1)
    )
    assert sibling_result.deltas and sibling_result.streamed_text == sibling_result.final["text"]
    stored = client.request("GET", f"/api/conversations/{first['conversation_id']}")
    answers = [m for m in stored["messages"] if m["parent_id"] == first["user_message"]["id"]]
    assert {m["id"] for m in answers} == {
        first["assistant_message_id"],
        sibling["assistant_message_id"],
    }
    assert stored["current_leaf_id"] == sibling["assistant_message_id"]


def test_concurrent_generation_slots_come_back_when_answers_end(live_stack: Stack) -> None:
    client = new_client(live_stack)  # default limit: 3 generating at once

    async def converse() -> tuple[list[dict], dict, dict]:
        sessions = [await client.open() for _ in range(3)]
        accepted = await asyncio.gather(
            *(s.send(f"Say the word {n}.", options=SHORT) for n, s in enumerate(sessions))
        )
        refused = await sessions[0].send("One too many.", options=SHORT)
        for session, answer in zip(sessions, accepted, strict=True):
            await session.collect(answer["generation_id"])
        later = await sessions[0].send("Now there is room.", options=SHORT)
        await sessions[0].collect(later["generation_id"])
        for session in sessions:
            await session.close()
        return list(accepted), refused, later

    accepted, refused, later = asyncio.run(converse())

    assert [a["type"] for a in accepted] == ["chat.accepted"] * 3
    assert refused["type"] == "error" and refused["code"] == "rate_limited"
    assert refused["retry_after"] >= 1
    assert later["type"] == "chat.accepted"


def test_a_rest_rename_and_delete_reach_the_users_other_connection(live_stack: Stack) -> None:
    client = new_client(live_stack)

    def for_conversation(conversation_id: str, **fields: Any) -> Any:
        def matches(frame: dict[str, Any]) -> bool:
            return (
                frame["type"] == "conversation.updated"
                and frame["conversation_id"] == conversation_id
                and all(frame.get(name) == value for name, value in fields.items())
            )

        return matches

    async def converse() -> tuple[dict, dict]:
        tab, phone = await client.open(), await client.open()
        accepted = await tab.send("Say hi.", options=SHORT)
        await tab.collect(accepted["generation_id"])
        conversation_id = accepted["conversation_id"]
        path = f"/api/conversations/{conversation_id}"
        await asyncio.to_thread(client.request, "PATCH", path, {"title": "Renamed over REST"})
        renamed = await phone.wait_for(
            for_conversation(conversation_id, title="Renamed over REST"), timeout=30
        )
        await asyncio.to_thread(client.request, "DELETE", path)
        deleted = await phone.wait_for(for_conversation(conversation_id, deleted=True), timeout=30)
        await tab.close()
        await phone.close()
        return renamed, deleted

    renamed, deleted = asyncio.run(converse())

    validate(renamed)
    validate(deleted)
    assert (renamed["archived"], renamed["deleted"]) == (False, False)
    assert deleted["title"] == "Renamed over REST"


def _cli(stack: Stack, client: ChatClient, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "chatclient", "--url", stack.base_url, *args],
        cwd=REPO,
        env={**os.environ, "CHAT_TOKEN": client.token or ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_command_line_client_streams_one_answer(live_stack: Stack) -> None:
    client = new_client(live_stack)

    process = _cli(live_stack, client, "--max-tokens", "12", "Name", "a", "fruit.")
    out, err = process.communicate(timeout=120)

    assert process.returncode == 0, err
    conversation = client.request("GET", "/api/conversations")["results"][0]
    stored = client.request("GET", f"/api/conversations/{conversation['id']}")
    answer = next(m for m in stored["messages"] if m["role"] == "assistant")
    assert out.startswith(answer["content"]) and answer["content"].strip()


def test_ctrl_c_in_the_command_line_client_stops_the_answer(live_stack: Stack) -> None:
    client = new_client(live_stack)
    process = _cli(live_stack, client, "--max-tokens", "400", "Write a long story about the sea.")
    assert process.stdout is not None
    # One byte straight from the pipe: the answer has started streaming. (A read through the
    # text wrapper would buffer more than it returns, and communicate() would not see it.)
    first_text = os.read(process.stdout.fileno(), 1).decode("ascii", errors="replace")
    started = time.monotonic()

    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)

    assert first_text
    assert process.returncode == 0, err
    assert "[stopping" in err
    assert out.rstrip().endswith("[stopped]")
    assert time.monotonic() - started < 5
    conversation = client.request("GET", "/api/conversations")["results"][0]
    stored = client.request("GET", f"/api/conversations/{conversation['id']}")
    answer = next(m for m in stored["messages"] if m["role"] == "assistant")
    assert answer["state"] == "stopped"
    assert (first_text + out).startswith(answer["content"])
