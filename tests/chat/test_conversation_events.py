"""`conversation.updated` after a REST change: a rename, an archive and a delete reach every
open connection of the conversation's owner (their other tabs and devices), and no one
else's. Real Redis channel layer, the real consumer and the real REST views."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client as HttpClient

from chat import services
from tests.chat.consumer_support import MODEL, Dispatched, connect

pytest_plugins = ["tests.chat.consumer_support"]
pytestmark = pytest.mark.django_db(transaction=True)


def _http(user: Any) -> HttpClient:
    client = HttpClient()
    client.force_login(user)
    return client


async def test_rest_changes_reach_every_connection_of_the_owner_and_no_one_else(
    chat_env: Dispatched, make_user: Any
) -> None:
    owner, stranger = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    conversation = await sync_to_async(services.conversation_create)(
        owner_id=owner.pk, title="Trip", model=MODEL
    )
    url = f"/api/conversations/{conversation['id']}"
    http = await sync_to_async(_http)(owner)
    tab, phone, other = await connect(owner), await connect(owner), await connect(stranger)

    renamed = await sync_to_async(http.patch)(
        url, json.dumps({"title": "Lisbon in May"}), content_type="application/json"
    )
    assert renamed.status_code == 200
    expected = {
        "type": "conversation.updated",
        "conversation_id": conversation["id"],
        "title": "Lisbon in May",
        "archived": False,
        "deleted": False,
    }
    assert await tab.receive() == expected
    assert await phone.receive() == expected

    archived = await sync_to_async(http.patch)(
        url, json.dumps({"archived": True}), content_type="application/json"
    )
    assert archived.status_code == 200
    assert await tab.receive() == expected | {"archived": True}
    assert await phone.receive() == expected | {"archived": True}

    deleted = await sync_to_async(http.delete)(url)
    assert deleted.status_code == 204
    assert await tab.receive() == expected | {"archived": True, "deleted": True}
    assert await phone.receive() == expected | {"archived": True, "deleted": True}

    # Another user heard none of it (and their connection works: a ping gets its pong next).
    await other.assert_quiet_then_pong()
    for client in (tab, phone, other):
        await client.close()


async def test_a_refused_rest_change_sends_nothing(chat_env: Dispatched, make_user: Any) -> None:
    owner = await sync_to_async(make_user)()
    conversation = await sync_to_async(services.conversation_create)(
        owner_id=owner.pk, title="Trip", model=MODEL
    )
    http = await sync_to_async(_http)(owner)
    tab = await connect(owner)

    refused = await sync_to_async(http.patch)(
        f"/api/conversations/{conversation['id']}",
        json.dumps({"title": ""}),
        content_type="application/json",
    )

    assert refused.status_code == 400
    await tab.assert_quiet_then_pong()
    await tab.close()
