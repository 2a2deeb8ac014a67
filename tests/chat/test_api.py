"""The conversation REST API with Django's test client, real PostgreSQL users and the store."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from chat import selectors, services
from chat.generation import lifecycle
from chat.generation.record import Ending

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_store")]

MESSAGE_FIELDS = [
    "id",
    "conversation_id",
    "parent_id",
    "role",
    "content",
    "state",
    "model",
    "created_at",
    "feedback",
]


def _conversations(owner: User, count: int) -> None:
    for index in range(count):
        services.conversation_create(owner_id=owner.pk, title=f"chat {index}", model="m")
        time.sleep(0.002)  # distinct millisecond timestamps: a stable expected order


def _user(email: str) -> User:
    return User.objects.create_user(email=email, password="a long enough password")


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _patch(client: Client, url: str, body: Any, **extra: Any) -> Any:
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.patch(url, raw, content_type="application/json", **extra)


def _post(client: Client, url: str, body: Any) -> Any:
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, raw, content_type="application/json")


def _conversation_with_answer(owner: User, title: str = "Trip") -> dict[str, Any]:
    conversation = services.conversation_create(owner_id=owner.pk, title=title, model="m")
    user = services.message_create_user(
        conversation_id=conversation["id"],
        owner_id=owner.pk,
        parent_id=None,
        content="Where to go in **May**?",
        request_id=uuid.uuid4().hex,
    )
    answer = services.message_create_assistant(
        conversation_id=conversation["id"], owner_id=owner.pk, parent_id=user["id"], model="m"
    )
    lifecycle.finish(
        Ending(
            generation_id=answer["generation_id"],
            owner_id=owner.pk,
            text="Lisbon.",
            state="complete",
            finish_reason="stop",
            prompt_tokens=4,
            completion_tokens=2,
            seq=1,
        )
    )
    return {"conversation": conversation["id"], "user": user["id"], "answer": answer["id"]}


@pytest.fixture
def alice() -> User:
    return _user("alice@example.com")


@pytest.fixture
def bob() -> User:
    return _user("bob@example.com")


# --- reading -----------------------------------------------------------------------------------


def test_the_list_shows_the_users_conversations_newest_first(alice: User) -> None:
    _conversations(alice, 3)

    response = _client(alice).get("/api/conversations")

    assert response.status_code == 200
    body = response.json()
    assert [item["title"] for item in body["results"]] == ["chat 2", "chat 1", "chat 0"]
    assert set(body["results"][0]) == {"id", "title", "model", "updated_at", "archived"}
    assert body["next_cursor"] is None


def test_the_list_pages_with_the_cursor_it_returns(alice: User) -> None:
    _conversations(alice, 5)
    client = _client(alice)

    first = client.get("/api/conversations", {"limit": 3}).json()
    second = client.get("/api/conversations", {"limit": 3, "cursor": first["next_cursor"]}).json()

    titles = [item["title"] for item in first["results"] + second["results"]]
    assert titles == [f"chat {index}" for index in (4, 3, 2, 1, 0)]
    assert second["next_cursor"] is None


def test_the_list_searches_and_filters_archived(alice: User) -> None:
    ids = _conversation_with_answer(alice, title="Holidays")
    other = services.conversation_create(owner_id=alice.pk, title="Taxes", model="m")
    services.conversation_update(conversation_id=other["id"], owner_id=alice.pk, archived=True)
    client = _client(alice)

    found = client.get("/api/conversations", {"q": "may"}).json()["results"]
    default = client.get("/api/conversations").json()["results"]
    archived = client.get("/api/conversations", {"archived": "true"}).json()["results"]
    everything = client.get("/api/conversations", {"archived": "all"}).json()["results"]

    assert [item["id"] for item in found] == [ids["conversation"]]
    assert [item["id"] for item in default] == [ids["conversation"]]
    assert [item["id"] for item in archived] == [other["id"]]
    assert len(everything) == 2


@pytest.mark.parametrize(
    "query",
    [
        {"cursor": "not-a-cursor"},
        {"archived": "maybe"},
        {"limit": "0"},
        {"limit": "1000"},
        {"limit": "²"},
        {"q": "x" * 201},
    ],
)
def test_bad_list_parameters_are_a_400(alice: User, query: dict[str, str]) -> None:
    response = _client(alice).get("/api/conversations", query)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_a_conversation_comes_with_its_message_tree(alice: User) -> None:
    ids = _conversation_with_answer(alice)

    response = _client(alice).get(f"/api/conversations/{ids['conversation']}")

    assert response.status_code == 200
    body = response.json()
    assert body["current_leaf_id"] == ids["answer"]
    question, answer = body["messages"]
    assert list(question) == MESSAGE_FIELDS
    assert question["parent_id"] is None and question["role"] == "user"
    assert answer["parent_id"] == ids["user"]
    assert answer["usage"] == {"prompt_tokens": 4, "completion_tokens": 2}
    assert answer["content"] == "Lisbon." and answer["state"] == "complete"
    assert {"usage", "generation_id", "seq"} <= set(answer)


def test_requests_without_credentials_get_401(alice: User) -> None:
    ids = _conversation_with_answer(alice)
    anonymous = Client()

    statuses = [
        anonymous.get("/api/conversations").status_code,
        anonymous.get(f"/api/conversations/{ids['conversation']}").status_code,
        anonymous.delete(f"/api/conversations/{ids['conversation']}").status_code,
        _post(anonymous, f"/api/messages/{ids['answer']}/feedback", {"rating": 1}).status_code,
    ]

    assert statuses == [401] * 4
    assert selectors.conversation_get(conversation_id=ids["conversation"], owner_id=alice.pk)


# --- writing -----------------------------------------------------------------------------------


def test_patch_renames_and_archives(alice: User) -> None:
    ids = _conversation_with_answer(alice)

    response = _patch(
        _client(alice),
        f"/api/conversations/{ids['conversation']}",
        {"title": "  Lisbon trip ", "archived": True},
    )

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["archived"]) == ("Lisbon trip", True)
    stored = selectors.conversation_get(conversation_id=ids["conversation"], owner_id=alice.pk)
    assert stored is not None and stored["title"] == "Lisbon trip" and stored["archived"]


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[1, 2]",
        {},
        {"title": ""},
        {"title": None},
        {"title": 7},
        {"title": "x" * 201},
        {"archived": "yes"},
        {"archived": 1},
        {"system_prompt": 5},
        {"owner_id": 2},
    ],
)
def test_bad_patch_bodies_are_a_400_and_change_nothing(alice: User, body: Any) -> None:
    ids = _conversation_with_answer(alice)
    before = selectors.conversation_get(conversation_id=ids["conversation"], owner_id=alice.pk)

    response = _patch(_client(alice), f"/api/conversations/{ids['conversation']}", body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    after = selectors.conversation_get(conversation_id=ids["conversation"], owner_id=alice.pk)
    assert after == before


def test_an_oversized_body_is_a_413(alice: User, settings: Any) -> None:
    ids = _conversation_with_answer(alice)
    padding = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)

    response = _patch(
        _client(alice), f"/api/conversations/{ids['conversation']}", {"title": padding}
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_delete_removes_the_conversation_from_every_endpoint(alice: User) -> None:
    ids = _conversation_with_answer(alice, title="Secret")
    client = _client(alice)

    deleted = client.delete(f"/api/conversations/{ids['conversation']}")

    assert deleted.status_code == 204
    assert client.get(f"/api/conversations/{ids['conversation']}").status_code == 404
    assert client.get(f"/api/conversations/{ids['conversation']}/export").status_code == 404
    assert client.get("/api/conversations", {"q": "secret"}).json()["results"] == []
    feedback = _post(client, f"/api/messages/{ids['answer']}/feedback", {"rating": 1})
    assert feedback.status_code == 404
    assert client.delete(f"/api/conversations/{ids['conversation']}").status_code == 404


def test_feedback_is_stored_on_an_answer(alice: User) -> None:
    ids = _conversation_with_answer(alice)

    response = _post(
        _client(alice),
        f"/api/messages/{ids['answer']}/feedback",
        {"rating": -1, "comment": "too short"},
    )

    assert response.status_code == 200
    assert response.json()["feedback"] == {"rating": -1, "comment": "too short"}
    stored = selectors.message_get(message_id=ids["answer"], owner_id=alice.pk)
    assert stored is not None and stored["feedback"] == {"rating": -1, "comment": "too short"}


@pytest.mark.parametrize(
    "body",
    [
        "nope",
        {},
        {"rating": 0},
        {"rating": 5},
        {"rating": True},
        {"rating": "1"},
        {"rating": 1, "comment": 3},
        {"rating": 1, "comment": "x" * 2001},
        {"rating": 1, "extra": 1},
    ],
)
def test_bad_feedback_is_a_400_and_changes_nothing(alice: User, body: Any) -> None:
    ids = _conversation_with_answer(alice)

    response = _post(_client(alice), f"/api/messages/{ids['answer']}/feedback", body)

    assert response.status_code == 400
    stored = selectors.message_get(message_id=ids["answer"], owner_id=alice.pk)
    assert stored is not None and stored["feedback"] is None


def test_feedback_on_a_user_message_is_a_400(alice: User) -> None:
    ids = _conversation_with_answer(alice)

    response = _post(_client(alice), f"/api/messages/{ids['user']}/feedback", {"rating": 1})

    assert response.status_code == 400


# --- export --------------------------------------------------------------------------------------


def test_export_as_json_is_an_attachment_with_every_message(alice: User) -> None:
    ids = _conversation_with_answer(alice)

    response = _client(alice).get(f"/api/conversations/{ids['conversation']}/export")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    body = json.loads(b"".join(response))  # streamed: see test_security_reads
    assert body["conversation"]["id"] == ids["conversation"]
    assert [m["id"] for m in body["messages"]] == [ids["user"], ids["answer"]]


def test_export_as_markdown_is_the_current_branch(alice: User) -> None:
    ids = _conversation_with_answer(alice, title="Trip")

    response = _client(alice).get(
        f"/api/conversations/{ids['conversation']}/export", {"format": "markdown"}
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"].endswith('.md"')
    text = b"".join(response).decode()
    assert text.startswith("# Trip\n")
    assert text.index("## User\n\nWhere to go in **May**?") < text.index("## Assistant (m)")
    assert "Lisbon." in text


def test_an_unknown_export_format_is_a_400(alice: User) -> None:
    ids = _conversation_with_answer(alice)

    response = _client(alice).get(
        f"/api/conversations/{ids['conversation']}/export", {"format": "pdf"}
    )

    assert response.status_code == 400


def test_a_wrong_method_is_a_405(alice: User) -> None:
    response = _post(_client(alice), "/api/conversations", {})

    assert response.status_code == 405
    assert response["Allow"] == "GET"


def test_a_rating_reaches_the_answers_bill_for_per_version_figures(alice: User) -> None:
    from inference.models import UsageRecord

    ids = _conversation_with_answer(alice)
    answer = selectors.message_get(message_id=ids["answer"], owner_id=alice.pk)
    assert answer is not None
    UsageRecord.objects.create(
        generation_id=answer["generation_id"], user=alice, model="m", finish_reason="stop"
    )

    response = _post(_client(alice), f"/api/messages/{ids['answer']}/feedback", {"rating": 1})

    assert response.status_code == 200
    assert UsageRecord.objects.get(generation_id=answer["generation_id"]).feedback_rating == 1
