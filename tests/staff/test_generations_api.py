"""`GET /api/admin/generations` and the kill switch, read from where live generations are kept:
the conversation store (state, tokens so far, worker, from the worker's checkpoints) and Redis
(the model queues' waiting sets). The store is mongomock; Redis and PostgreSQL are real.

The kill switch against a real worker and a real websocket client is
tests/e2e/test_staff_console_e2e.py."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client

from accounts.models import User
from chat import services
from chat.generation import lifecycle, stop, waiting
from chat.generation.names import STOP_CHANNEL
from chat.generation.record import Ending
from staff.models import AuditEntry
from tests.staff.conftest import bearer

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = f"inference.staff-test-{uuid.uuid4().hex[:8]}"


def _generation(owner: User) -> str:
    conversation = services.conversation_create(owner_id=owner.pk, title="t", model="m1")
    question = services.message_create_user(
        conversation_id=conversation["id"],
        owner_id=owner.pk,
        parent_id=None,
        content="hello",
        request_id=uuid.uuid4().hex,
    )
    answer = services.message_create_assistant(
        conversation_id=conversation["id"],
        owner_id=owner.pk,
        parent_id=question["id"],
        model="m1",
        queue=QUEUE,
    )
    generation_id: str = answer["generation_id"]
    waiting.add(queue=QUEUE, generation_id=generation_id, priority=5)
    # The store keeps milliseconds: two generations made within one are listed by id, not by
    # arrival (CI once made both of a test's queued generations in the same millisecond).
    time.sleep(0.002)
    return generation_id


def _running(owner: User, *, completion_tokens: int) -> str:
    """A generation a worker has taken: out of the queue, checkpointed with its tokens."""
    generation_id = _generation(owner)
    waiting.remove(queue=QUEUE, generation_id=generation_id)
    lifecycle.checkpoint(
        generation_id=generation_id,
        owner_id=owner.pk,
        text="partial answer",
        seq=3,
        usage={"prompt_tokens": 20, "completion_tokens": completion_tokens},
        worker="gpu-1@host",
    )
    return generation_id


@pytest.fixture(autouse=True)
def queue_emptied() -> Any:
    yield
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(
        f"chat:waiting:{QUEUE}", f"chat:waiting-since:{QUEUE}", f"chat:waiting-arrivals:{QUEUE}"
    )
    client.close()


def test_running_and_queued_generations_with_user_model_tokens_worker_and_position(
    superuser: User, make_user: Callable[..., User]
) -> None:
    alice, bob = make_user(), make_user()
    running = _running(alice, completion_tokens=12)
    first, second = _generation(bob), _generation(alice)
    headers = bearer(superuser)

    live = Client().get("/api/admin/generations?state=running", **headers).json()["results"]
    queued = Client().get("/api/admin/generations?state=queued", **headers).json()["results"]
    both = Client().get("/api/admin/generations", **headers).json()["results"]

    assert [row["generation_id"] for row in live] == [running]
    row = live[0]
    assert row["state"] == "running" and row["user"] == {"id": alice.pk, "email": alice.email}
    assert row["model"] == "m1" and row["worker"] == "gpu-1@host" and row["seq"] == 3
    assert row["tokens"] == {"prompt": 20, "completion": 12}
    assert row["age_seconds"] >= 0 and row["queue_position"] is None
    assert [(r["generation_id"], r["queue_position"]) for r in queued] == [(second, 2), (first, 1)]
    assert queued[1]["user"]["email"] == bob.email and queued[1]["worker"] is None
    assert {r["generation_id"] for r in both} == {running, first, second}


def test_ended_generations_are_not_live(superuser: User, make_user: Callable[..., User]) -> None:
    owner = make_user()
    generation_id = _running(owner, completion_tokens=4)
    lifecycle.finish(
        Ending(generation_id=generation_id, owner_id=owner.pk, state="complete", text="x", seq=3)
    )

    body = Client().get("/api/admin/generations", **bearer(superuser)).json()

    assert body == {"results": [], "next_cursor": None}


def test_the_list_pages_newest_first(superuser: User, make_user: Callable[..., User]) -> None:
    owner = make_user()
    ids = [_generation(owner) for _ in range(3)]
    headers = bearer(superuser)

    first = Client().get("/api/admin/generations?limit=2", **headers).json()
    rest = (
        Client()
        .get(f"/api/admin/generations?limit=2&cursor={first['next_cursor']}", **headers)
        .json()
    )

    listed = [row["generation_id"] for row in first["results"] + rest["results"]]
    assert listed == list(reversed(ids)) and rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [("state=done", "state"), ("limit=500", "limit"), ("cursor=x", "cursor"), ("user=1", "user")],
)
def test_bad_parameters_are_400(superuser: User, query: str, field: str) -> None:
    response = Client().get(f"/api/admin/generations?{query}", **bearer(superuser))

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_the_kill_switch_is_the_users_own_stop_and_is_audited(
    superuser: User, make_user: Callable[..., User]
) -> None:
    owner = make_user()
    generation_id = _running(owner, completion_tokens=7)
    listener = redis.Redis.from_url(settings.REDIS_URL).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(STOP_CHANNEL)
    listener.get_message(timeout=1)

    response = Client().post(f"/api/admin/generations/{generation_id}/stop", **bearer(superuser))

    assert response.status_code == 202
    assert response.json() == {
        "generation_id": generation_id,
        "state": "streaming",
        "stop_requested": True,
    }
    # What a worker hears (inference.stop) and what one that starts it later reads.
    heard = listener.get_message(timeout=5)
    listener.close()
    assert heard is not None and heard["data"].decode() == generation_id
    assert stop.requested(generation_id=generation_id)
    entry = AuditEntry.objects.get(action="generation.stop")
    assert entry.actor_id == superuser.pk and entry.target_type == "chat.generation"
    assert entry.target_id == generation_id
    assert entry.before["owner_id"] == owner.pk and entry.before["usage"]["completion_tokens"] == 7
    assert entry.after["stop_requested"] is True


def test_stopping_an_unknown_or_ended_generation_is_refused_and_not_audited(
    superuser: User, make_user: Callable[..., User]
) -> None:
    owner = make_user()
    ended = _running(owner, completion_tokens=1)
    lifecycle.finish(
        Ending(generation_id=ended, owner_id=owner.pk, state="stopped", text="", seq=0)
    )
    headers = bearer(superuser)

    unknown = Client().post("/api/admin/generations/nope/stop", **headers)
    too_long = Client().post(f"/api/admin/generations/{'x' * 65}/stop", **headers)
    over = Client().post(f"/api/admin/generations/{ended}/stop", **headers)

    assert unknown.status_code == too_long.status_code == 404
    assert over.status_code == 409 and "ended" in over.json()["error"]["message"]
    assert not AuditEntry.objects.exists()
    assert not stop.requested(generation_id=ended)


def test_users_who_are_not_staff_cannot_stop_a_generation(make_user: Callable[..., User]) -> None:
    owner = make_user()
    generation_id = _running(owner, completion_tokens=1)

    response = Client().post(f"/api/admin/generations/{generation_id}/stop", **bearer(owner))

    assert response.status_code == 403
    assert not stop.requested(generation_id=generation_id)
