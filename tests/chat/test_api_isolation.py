"""Every conversation endpoint, called by Bob with Alice's ids: the same 404 as for an id that
never existed, nothing of Alice's in the answer, and nothing of hers changed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from chat.store import CONVERSATIONS, MESSAGES, get_db
from tests.chat.test_api import _conversation_with_answer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_store")]

MISSING = "f" * 32


def _snapshot() -> tuple[list[dict], list[dict]]:
    db = get_db()
    return (
        sorted(db[CONVERSATIONS].find({}), key=lambda item: item["_id"]),
        sorted(db[MESSAGES].find({}), key=lambda item: item["_id"]),
    )


def _json(client: Client, method: str, url: str, body: Any) -> Any:
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


REQUESTS: dict[str, Callable[[Client, dict[str, str]], Any]] = {
    "get conversation": lambda c, ids: c.get(f"/api/conversations/{ids['conversation']}"),
    "rename conversation": lambda c, ids: _json(
        c, "patch", f"/api/conversations/{ids['conversation']}", {"title": "mine now"}
    ),
    "archive conversation": lambda c, ids: _json(
        c, "patch", f"/api/conversations/{ids['conversation']}", {"archived": True}
    ),
    "delete conversation": lambda c, ids: c.delete(f"/api/conversations/{ids['conversation']}"),
    "export json": lambda c, ids: c.get(f"/api/conversations/{ids['conversation']}/export"),
    "export markdown": lambda c, ids: c.get(
        f"/api/conversations/{ids['conversation']}/export", {"format": "markdown"}
    ),
    "feedback on answer": lambda c, ids: _json(
        c, "post", f"/api/messages/{ids['answer']}/feedback", {"rating": 1, "comment": "x"}
    ),
    "feedback on question": lambda c, ids: _json(
        c, "post", f"/api/messages/{ids['user']}/feedback", {"rating": 1, "comment": "x"}
    ),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_another_users_ids_get_the_same_404_as_missing_ones(name: str) -> None:
    alice = User.objects.create_user(email="alice@example.com", password="a long password 1")
    bob = User.objects.create_user(email="bob@example.com", password="a long password 2")
    alices = _conversation_with_answer(alice, title="Alice's secret")
    bob_client = Client()
    bob_client.force_login(bob)
    before = _snapshot()

    theirs = REQUESTS[name](bob_client, alices)
    missing = REQUESTS[name](bob_client, dict.fromkeys(alices, MISSING))

    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    assert b"secret" not in theirs.content
    assert _snapshot() == before


def test_the_list_and_search_show_only_the_users_own_conversations() -> None:
    alice = User.objects.create_user(email="alice@example.com", password="a long password 1")
    bob = User.objects.create_user(email="bob@example.com", password="a long password 2")
    _conversation_with_answer(alice, title="Alice's secret")
    bob_client = Client()
    bob_client.force_login(bob)

    listed = bob_client.get("/api/conversations", {"archived": "all"}).json()
    searched = bob_client.get("/api/conversations", {"q": "secret"}).json()

    assert listed == {"results": [], "next_cursor": None}
    assert searched == {"results": [], "next_cursor": None}


def test_a_cursor_from_another_users_list_reveals_nothing() -> None:
    alice = User.objects.create_user(email="alice@example.com", password="a long password 1")
    bob = User.objects.create_user(email="bob@example.com", password="a long password 2")
    for index in range(3):
        _conversation_with_answer(alice, title=f"Alice {index}")
    alice_client, bob_client = Client(), Client()
    alice_client.force_login(alice)
    bob_client.force_login(bob)
    cursor = alice_client.get("/api/conversations", {"limit": 1}).json()["next_cursor"]

    response = bob_client.get("/api/conversations", {"cursor": cursor})

    assert response.status_code == 200
    assert response.json() == {"results": [], "next_cursor": None}
