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
    message = ChatSend(type="chat.send", request_id="race", content="Racing copies")
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
