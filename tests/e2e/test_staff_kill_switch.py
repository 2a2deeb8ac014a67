"""The kill switch on the real stack (Daphne, a Celery worker hosting vLLM, PostgreSQL, Redis):
a generation that streams to a real websocket client is listed by the staff API as running,
with its worker and tokens so far; the staff member stops it, and the client sees it end as
its own stop would end it (`generation.done`, `finish_reason: "stopped"`, the text it saw).
The audit log records who stopped it, and only the tokens generated are billed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest

from chatclient.client import ChatClient, GenerationResult
from tests.e2e.metrics_support import staff_client, user_client
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

STORY = "Write a long story about a lighthouse keeper, a storm and a lost ship."


def running_row(staff: ChatClient, generation_id: str, *, timeout: float = 10) -> dict[str, Any]:
    """The generation's row in the running list once a checkpoint has counted its tokens."""
    deadline = time.monotonic() + timeout
    while True:
        rows = staff.request("GET", "/api/admin/generations?state=running")["results"]
        row = next((r for r in rows if r["generation_id"] == generation_id), None)
        if (row and row["tokens"]["completion"] > 0) or time.monotonic() > deadline:
            assert row is not None, rows
            return dict(row)
        time.sleep(0.2)


def audit_and_bill(stack: Stack, generation_id: str) -> tuple[list[tuple], tuple | None]:
    url = stack.env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(url) as connection:
        entries = connection.execute(
            "SELECT actor_email, source, action, before->>'state', after->>'stop_requested' "
            "FROM staff_auditentry WHERE target_type = 'chat.generation' AND target_id = %s",
            [generation_id],
        ).fetchall()
        bill = connection.execute(
            "SELECT finish_reason, completion_tokens FROM inference_usagerecord "
            "WHERE generation_id = %s",
            [generation_id],
        ).fetchone()
    return entries, bill


def test_a_staff_stop_ends_a_running_generation_for_its_client(live_stack: Stack) -> None:
    staff = staff_client(live_stack, superuser=True)
    user = user_client(live_stack)

    async def converse() -> tuple[dict[str, Any], dict[str, Any], Any, GenerationResult]:
        async with user.connect() as session:
            accepted = await session.send(STORY, options={"max_tokens": 512})
            generation_id = accepted["generation_id"]
            first = await session.wait_for(
                lambda m: (
                    m.get("generation_id") == generation_id and m["type"] == "generation.delta"
                )
            )
            session.pending.insert(0, first)  # collected below with the rest
            row = await asyncio.to_thread(running_row, staff, generation_id)
            stopped = await asyncio.to_thread(
                staff.request, "POST", f"/api/admin/generations/{generation_id}/stop"
            )
            result = await session.collect(generation_id, timeout=60)
            return accepted, row, stopped, result

    accepted, row, stopped, result = asyncio.run(converse())
    generation_id = accepted["generation_id"]

    assert row["user"]["email"] == user.email and row["model"]
    assert row["worker"] and "@" in row["worker"]  # the Celery worker's hostname
    assert row["tokens"]["prompt"] > 0 and row["tokens"]["completion"] > 0
    assert stopped == {"generation_id": generation_id, "state": "streaming", "stop_requested": True}
    final = result.final
    assert final is not None and final["type"] == "generation.done"
    assert final["finish_reason"] == "stopped"
    assert final["text"] == "".join(delta["text"] for delta in result.deltas)
    assert 0 < final["usage"]["completion_tokens"] < 512
    after = staff.request("GET", "/api/admin/generations")["results"]
    assert generation_id not in {r["generation_id"] for r in after}

    deadline = time.monotonic() + 10
    entries, bill = audit_and_bill(live_stack, generation_id)
    while bill is None and time.monotonic() < deadline:  # billed just after the closing message
        time.sleep(0.2)
        entries, bill = audit_and_bill(live_stack, generation_id)
    assert entries == [(staff_email(staff), "api", "generation.stop", "streaming", "true")]
    assert bill == ("stopped", final["usage"]["completion_tokens"])


def staff_email(staff: ChatClient) -> str:
    return str(staff.request("GET", "/api/auth/me")["email"])
