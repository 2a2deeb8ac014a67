"""Security (issue 15, finding 10): no read loads without bound. Conversation detail pages its
messages under a cap, export streams a batch at a time, search reads a capped number of
messages, and the public /readyz costs the stores at most one check per interval, over one
Redis client and without SCAN. Real PostgreSQL users and Redis; the ASGI handler that Daphne
runs for the streamed responses."""

from __future__ import annotations

import json
import time
import tracemalloc
import uuid
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import AsyncClient, Client
from pytest_django import Settings

from accounts.models import User
from chat import selectors, services
from config import health
from inference.worker import Liveness

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_store")]


def _user(email: str = "reader@example.com") -> User:
    return User.objects.create_user(email=email, password="a long enough password")


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _chain(owner: User, count: int, *, content: str = "message", title: str = "Long") -> dict:
    """A conversation of `count` messages, each answering the one before (one branch)."""
    conversation = services.conversation_create(owner_id=owner.pk, title=title, model="m")
    parent = None
    ids = []
    for index in range(count):
        message = services.message_create_user(
            conversation_id=conversation["id"],
            owner_id=owner.pk,
            parent_id=parent,
            content=f"{content} {index}",
            request_id=uuid.uuid4().hex,
        )
        parent = message["id"]
        ids.append(parent)
    return {"id": conversation["id"], "messages": ids}


# --- conversation detail ---------------------------------------------------------------------


def test_detail_without_a_limit_returns_at_most_the_cap_and_a_cursor_to_the_rest(
    settings: Settings,
) -> None:
    settings.CHAT_MESSAGES_PAGE_MAX = 3
    owner = _user()
    conversation = _chain(owner, 7)
    client = _client(owner)

    pages = []
    response = client.get(f"/api/conversations/{conversation['id']}")
    while True:
        assert response.status_code == 200
        body = response.json()
        pages.append([message["id"] for message in body["messages"]])
        if body["messages_next_cursor"] is None:
            break
        response = client.get(
            f"/api/conversations/{conversation['id']}", {"cursor": body["messages_next_cursor"]}
        )

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [i for page in pages for i in page] == conversation["messages"]
    assert body["current_leaf_id"] == conversation["messages"][-1]  # the old fields stay


def test_detail_of_a_conversation_under_the_cap_is_unchanged_for_old_clients() -> None:
    owner = _user()
    conversation = _chain(owner, 5)

    body = _client(owner).get(f"/api/conversations/{conversation['id']}").json()

    assert [m["id"] for m in body["messages"]] == conversation["messages"]
    assert body["messages_next_cursor"] is None


def test_a_message_written_between_pages_does_not_shift_them() -> None:
    owner = _user()
    conversation = _chain(owner, 4)
    client = _client(owner)
    url = f"/api/conversations/{conversation['id']}"

    first = client.get(url, {"limit": 2}).json()
    late = _chain_more(owner, conversation["id"], parent=conversation["messages"][-1])
    second = client.get(url, {"limit": 10, "cursor": first["messages_next_cursor"]}).json()

    seen = [m["id"] for m in first["messages"] + second["messages"]]
    assert seen == [*conversation["messages"], late]


def _chain_more(owner: User, conversation_id: str, *, parent: str) -> str:
    message = services.message_create_user(
        conversation_id=conversation_id,
        owner_id=owner.pk,
        parent_id=parent,
        content="late",
        request_id=uuid.uuid4().hex,
    )
    return str(message["id"])


@pytest.mark.parametrize(
    "query", [{"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"cursor": "forged"}]
)
def test_a_bad_limit_or_cursor_on_detail_is_a_400(query: dict[str, str]) -> None:
    owner = _user()
    conversation = _chain(owner, 2)

    response = _client(owner).get(f"/api/conversations/{conversation['id']}", query)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_a_cursor_of_the_conversation_list_is_no_message_cursor() -> None:
    owner = _user()
    for _ in range(3):
        _chain(owner, 1)
    listed = _client(owner).get("/api/conversations", {"limit": 1}).json()
    conversation = _chain(owner, 2)

    response = _client(owner).get(
        f"/api/conversations/{conversation['id']}", {"cursor": listed["next_cursor"]}
    )

    assert response.status_code == 400


# --- export ------------------------------------------------------------------------------------


async def _streamed(client: AsyncClient, url: str, **query: str) -> tuple[Any, list[bytes]]:
    response = await client.get(url, query)
    assert response.streaming
    return response, [chunk async for chunk in response.streaming_content]


async def _async_client(owner: User) -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(owner)
    return client


async def test_export_as_json_streams_every_message_a_batch_at_a_time() -> None:
    owner = await sync_to_async(_user)()
    count = selectors.MESSAGE_BATCH * 2 + 7
    conversation = await sync_to_async(_chain)(owner, count)
    client = await _async_client(owner)

    response, chunks = await _streamed(client, f"/api/conversations/{conversation['id']}/export")

    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('.json"')
    body = json.loads(b"".join(chunks))
    assert [m["id"] for m in body["messages"]] == conversation["messages"]
    assert body["conversation"]["id"] == conversation["id"]
    assert len(chunks) > count  # the head, then each message: never one body


async def test_export_as_markdown_streams_the_whole_current_branch_in_order() -> None:
    owner = await sync_to_async(_user)()
    count = selectors.MESSAGE_BATCH + 5
    conversation = await sync_to_async(_chain)(owner, count, content="line")
    client = await _async_client(owner)

    _, chunks = await _streamed(
        client, f"/api/conversations/{conversation['id']}/export", format="markdown"
    )

    text = b"".join(chunks).decode()
    assert text.startswith("# Long\n")
    positions = [text.index(f"\nline {index}\n") for index in range(count)]
    assert positions == sorted(positions)
    assert len(chunks) > count


async def test_an_export_holds_a_batch_in_memory_not_the_conversation() -> None:
    owner = await sync_to_async(_user)()
    big = "x" * 20_000
    conversation = await sync_to_async(_chain)(owner, 600, content=big)  # 12 MB of text
    client = await _async_client(owner)
    url = f"/api/conversations/{conversation['id']}/export"

    tracemalloc.start()
    try:
        response = await client.get(url)
        received = 0
        async for chunk in response.streaming_content:
            received += len(chunk)
            del chunk
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert received > 600 * 20_000
    # One batch of 50 such messages is 1 MB of text; the whole conversation is 12 MB.
    assert peak < received / 3, f"peak {peak / 1e6:.1f} MB for a {received / 1e6:.1f} MB export"


# --- search --------------------------------------------------------------------------------------


def test_search_reads_at_most_the_capped_number_of_matching_messages(
    settings: Settings,
) -> None:
    settings.CHAT_SEARCH_MAX_MESSAGES = 2
    owner = _user()
    older = [_chain(owner, 1, content="needle")["id"] for _ in range(3)]
    time.sleep(0.01)
    newest = [_chain(owner, 1, content="needle")["id"] for _ in range(2)]
    by_title = _chain(owner, 1, content="nothing", title="needle in the title")["id"]

    found = _client(owner).get("/api/conversations", {"q": "needle", "limit": 100}).json()

    ids = {item["id"] for item in found["results"]}
    assert ids == {*newest, by_title}  # the two newest matching messages, and the title
    assert not ids & set(older)


def test_search_does_not_run_distinct_over_all_of_the_users_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = _user()
    _chain(owner, 3, content="needle")
    collection = type(selectors.get_db()[selectors.MESSAGES])

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("search ran distinct over the messages")

    monkeypatch.setattr(collection, "distinct", refuse)

    response = _client(owner).get("/api/conversations", {"q": "needle"})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


# --- /readyz ------------------------------------------------------------------------------------


@pytest.fixture
def redis_db() -> redis.Redis:
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(health.LIVE_WORKERS_KEY)
    health.readiness_forget()
    yield client
    client.delete(health.LIVE_WORKERS_KEY)
    health.readiness_forget()


def _worker(client: redis.Redis) -> Liveness:
    return Liveness(hostname=f"test-{uuid.uuid4().hex}@host", queues=["inference.x"], client=client)


def test_readyz_sees_a_live_worker_and_not_a_stopped_one(redis_db: redis.Redis) -> None:
    worker = _worker(redis_db)
    worker.start()
    try:
        ready = Client().get("/readyz")
    finally:
        worker.stop()
    health.readiness_forget()
    gone = Client().get("/readyz")

    assert ready.status_code == 200, ready.json()
    assert gone.status_code == 503
    assert gone.json()["checks"]["worker"] == "failed"


def test_readyz_reuses_its_result_for_the_cache_interval(
    redis_db: redis.Redis, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    settings.READYZ_CACHE_SECONDS = 1.0
    now = [1000.0]
    monkeypatch.setattr(health, "clock", lambda: now[0])
    worker = _worker(redis_db)
    worker.start()
    first = Client().get("/readyz")
    worker.stop()

    now[0] += 0.5
    cached = Client().get("/readyz")
    now[0] += 0.6
    fresh = Client().get("/readyz")

    assert first.status_code == cached.status_code == 200
    assert fresh.status_code == 503


def test_readyz_opens_no_redis_connection_and_runs_no_scan_per_call(
    redis_db: redis.Redis, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    settings.READYZ_CACHE_SECONDS = 0  # every call checks: the cost of one check is measured
    worker = _worker(redis_db)
    worker.start()
    Client().get("/readyz")  # the process's client, opened once
    connects: list[object] = []
    scans: list[object] = []
    original_connect = redis.connection.Connection._connect  # opens the socket

    def counting_connect(self: Any) -> Any:
        connects.append(self)
        return original_connect(self)

    monkeypatch.setattr(redis.connection.Connection, "_connect", counting_connect)
    monkeypatch.setattr(redis.Redis, "scan", lambda *a, **k: scans.append(a) or (0, []))
    try:
        statuses = {Client().get("/readyz").status_code for _ in range(20)}
    finally:
        worker.stop()

    assert statuses == {200}
    assert scans == []
    assert connects == []
