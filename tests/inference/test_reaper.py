"""The reaper against the real store (mongomock), PostgreSQL and a recording channel layer:
stale streaming generations and queued ones whose task is lost become `interrupted`, keep
their text, are billed once and announced once; live ones are left alone."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from chat import selectors, services
from chat.generation import lifecycle
from chat.generation.record import Ending
from chat.store import MESSAGES, get_db
from inference import prepare
from inference.models import UsageRecord
from inference.prepare import Abandoned, Ended
from inference.reaper import generations_reap
from tests.inference.fakes import FakeClock, RecordingLayer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_store")]


def generation(owner_id: int, *, state: str, age: float, text: str = "") -> dict[str, Any]:
    conversation = services.conversation_create(owner_id=owner_id, title="t", model="m")
    question = services.message_create_user(
        conversation_id=conversation["id"],
        owner_id=owner_id,
        parent_id=None,
        content="Hi",
        request_id=uuid.uuid4().hex,
    )
    answer = services.message_create_assistant(
        conversation_id=conversation["id"], owner_id=owner_id, parent_id=question["id"], model="m"
    )
    if state == "streaming":
        lifecycle.checkpoint(
            generation_id=answer["generation_id"],
            owner_id=owner_id,
            text=text,
            seq=2,
            seq_offsets=[3, len(text)],
            usage={"prompt_tokens": 12, "completion_tokens": 6},
        )
    heartbeat = timezone.now() - timedelta(seconds=age)
    get_db()[MESSAGES].update_one({"_id": answer["id"]}, {"$set": {"heartbeat_at": heartbeat}})
    return selectors.message_by_generation(generation_id=answer["generation_id"], owner_id=owner_id)


@pytest.fixture
def owner_id() -> int:
    return get_user_model().objects.create_user(f"r{uuid.uuid4().hex[:8]}@example.org", "pw").pk


def records_of(owner_id: int) -> list[UsageRecord]:
    from django.db import connection

    try:
        return list(UsageRecord.objects.filter(user_id=owner_id))
    finally:
        connection.close()


def state_of(message: dict[str, Any]) -> dict[str, Any]:
    return selectors.message_by_generation(
        generation_id=message["generation_id"], owner_id=message["owner_id"]
    )


# The usage record is written from a worker thread: it must see the committed user.
@pytest.mark.django_db(transaction=True)
async def test_a_stale_stream_is_interrupted_keeping_its_text_billed_and_announced_once(
    owner_id: int,
) -> None:
    stale = await sync_to_async(generation)(owner_id, state="streaming", age=60, text="Par tial")
    fresh = await sync_to_async(generation)(owner_id, state="streaming", age=1, text="Live")
    layer = RecordingLayer(FakeClock())

    first = await generations_reap(layer=layer, stale_after=30)
    second = await generations_reap(layer=layer, stale_after=30)

    assert (first.streaming, second.streaming) == (1, 0)
    reaped = await sync_to_async(state_of)(stale)
    assert reaped["state"] == "interrupted" and reaped["content"] == "Par tial"
    assert (await sync_to_async(state_of)(fresh))["state"] == "streaming"
    (error,) = layer.events("generation.error")
    assert error == {
        "type": "generation.error",
        "generation_id": stale["generation_id"],
        "code": "interrupted",
        "message": error["message"],
        "text": "Par tial",
    }
    records = await sync_to_async(records_of)(owner_id)
    assert [(r.finish_reason, r.prompt_tokens, r.completion_tokens) for r in records] == [
        ("interrupted", 12, 6)
    ]


async def test_a_queued_generation_is_reaped_only_once_its_task_must_be_lost(
    owner_id: int,
) -> None:
    lost = await sync_to_async(generation)(owner_id, state="queued", age=7200)
    waiting = await sync_to_async(generation)(owner_id, state="queued", age=60)
    layer = RecordingLayer(FakeClock())

    result = await generations_reap(layer=layer, stale_after=30, queued_after=3600)

    assert result.queued == 1
    assert (await sync_to_async(state_of)(lost))["state"] == "interrupted"
    assert (await sync_to_async(state_of)(waiting))["state"] == "queued"


def test_the_reap_stale_command_reports_what_it_ended(owner_id: int) -> None:
    generation(owner_id, state="streaming", age=120, text="x")
    out = io.StringIO()

    call_command("reap_stale", "--stale-after", "30", stdout=out)

    assert "interrupted 1 streaming" in out.getvalue()


def test_a_redelivered_task_leaves_final_and_live_generations_alone(owner_id: int) -> None:
    done = generation(owner_id, state="streaming", age=1, text="x")
    lifecycle.finish(
        Ending(
            generation_id=done["generation_id"],
            owner_id=owner_id,
            text="x",
            state="complete",
            finish_reason="stop",
            seq=1,
        )
    )
    live = generation(owner_id, state="streaming", age=1, text="y")
    dead = generation(owner_id, state="streaming", age=120, text="z")

    def again(message: dict[str, Any]) -> Any:
        return prepare.generation_prepare(generation_id=message["generation_id"], owner_id=owner_id)

    ended = again(done)
    assert isinstance(ended, Ended) and ended.message["state"] == "complete"  # billed if unbilled
    assert again(live) is None  # another attempt is streaming it right now
    abandoned = again(dead)
    assert isinstance(abandoned, Abandoned) and abandoned.message["content"] == "z"
