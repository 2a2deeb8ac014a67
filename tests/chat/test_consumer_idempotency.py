"""A repeated `chat.send` (same user, same request_id) is answered with the same acceptance and
creates nothing, also when the copies race on two connections or in parallel threads."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from chat.generation.admission import Prepared, chat_send_prepare
from chat.protocol import ChatSend
from tests.chat.consumer_support import Dispatched, connect
from tests.chat.store_view import snapshot, stored_snapshot

pytest_plugins = ["tests.chat.consumer_support"]
pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_same_request_on_two_connections_at_once_creates_one_message(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    phone, laptop = await connect(user), await connect(user)

    answers = await asyncio.gather(
        phone.chat_send("Only once", request_id="dup"),
        laptop.chat_send("Only once", request_id="dup"),
    )

    assert answers[0]["type"] == "chat.accepted"
    assert answers[0] == answers[1]
    await asyncio.gather(phone.settle(), laptop.settle())
    conversations, messages = await stored_snapshot(user.pk)
    assert len(conversations) == 1
    assert [m["role"] for m in messages].count("user") == 1
    assert len(chat_env.tasks) == 1
    await phone.close()
    await laptop.close()


def test_parallel_prepares_of_one_request_store_and_dispatch_it_once(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = make_user()
    # A plain question: the real moderation runs, and the semantic classifier's multilingual
    # member is unsure of two-word fragments ("racing copies" scored 0.79 after its retraining).
    message = ChatSend(
        type="chat.send", request_id="race", content="What is the capital of France?"
    )
    barrier = threading.Barrier(6)

    def prepare(_: int) -> Prepared:
        barrier.wait()
        return chat_send_prepare(owner_id=user.pk, priority=5, message=message)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(prepare, range(6)))

    assert len({result.accepted for result in results}) == 1
    assert sum(result.dispatch is not None for result in results) == 1
    conversations, messages = snapshot(user.pk)
    assert len(conversations) == 1
    assert len(messages) == 2  # the user message and its one queued answer


def test_a_repeated_request_id_is_answered_from_indexed_lookups_not_the_conversation(
    chat_env: Dispatched, make_user: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    import mongomock.collection

    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 100
    settings.CHAT_RATE_PER_MINUTE = 0
    user = make_user()
    send = ChatSend(type="chat.send", request_id="again", content="Hello there")
    first = chat_send_prepare(owner_id=user.pk, priority=5, message=send)
    for number in range(20):  # a long conversation: reading it would be the costly way
        later = ChatSend(
            type="chat.send",
            request_id=f"later-{number}",
            conversation_id=first.accepted.conversation_id,
            content=f"Message {number}",
        )
        chat_send_prepare(owner_id=user.pk, priority=5, message=later)
    queries: list[dict[str, Any]] = []
    for method in ("find", "find_one"):
        original = getattr(mongomock.collection.Collection, method)

        def spy(self: Any, filter: Any = None, *args: Any, _original: Any = original, **kw: Any):
            queries.append(dict(filter or {}))
            return _original(self, filter, *args, **kw)

        monkeypatch.setattr(mongomock.collection.Collection, method, spy)

    again = chat_send_prepare(owner_id=user.pk, priority=5, message=send)

    assert again.accepted == first.accepted and again.dispatch is None
    assert queries, "the repeated request read nothing"
    assert all("conversation_id" not in query for query in queries), queries
    assert all(query.keys() & {"request_id", "parent_id", "_id"} for query in queries), queries
