"""Owner isolation, on every backend: for every store function, another owner's id behaves
exactly like an id that does not exist, and nothing stored changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chat import selectors, services
from chat.errors import ChatError
from chat.generation import lifecycle
from chat.generation.record import Ending
from chat.store import CONVERSATIONS, MESSAGES, get_db

OWNER = 1
INTRUDER = 2
MISSING = "0" * 32


def _snapshot() -> tuple[list[dict], list[dict]]:
    db = get_db()
    return (
        sorted(db[CONVERSATIONS].find({}), key=lambda item: item["_id"]),
        sorted(db[MESSAGES].find({}), key=lambda item: item["_id"]),
    )


def _outcome(call: Callable[[], Any]) -> Any:
    """What a call gives back, or the error code it raises."""
    try:
        return ("returned", call())
    except ChatError as error:
        return ("raised", error.code)


@pytest.fixture
def victim(store: str) -> dict[str, Any]:
    """OWNER's conversation with one answered turn; the intruder owns a conversation too."""
    conversation = services.conversation_create(owner_id=OWNER, title="Private", model="m")
    user = services.message_create_user(
        conversation_id=conversation["id"],
        owner_id=OWNER,
        parent_id=None,
        content="private words",
        request_id="req-private",
    )
    answer = services.message_create_assistant(
        conversation_id=conversation["id"], owner_id=OWNER, parent_id=user["id"], model="m"
    )
    services.conversation_create(owner_id=INTRUDER, title="Mine", model="m")
    return {
        "conversation": conversation["id"],
        "user": user["id"],
        "answer": answer["id"],
        "generation": answer["generation_id"],
        "request": "req-private",
    }


# Each entry: a name, and a call made with the intruder's owner id and one of the victim's ids
# (or, for the control, an id that does not exist).
CALLS: dict[str, Callable[[str], Any]] = {
    "conversation_get": lambda ids: selectors.conversation_get(
        conversation_id=ids, owner_id=INTRUDER
    ),
    "conversation_update": lambda ids: services.conversation_update(
        conversation_id=ids, owner_id=INTRUDER, title="pwned", archived=True
    ),
    "conversation_delete": lambda ids: services.conversation_delete(
        conversation_id=ids, owner_id=INTRUDER
    ),
    "message_create_user": lambda ids: services.message_create_user(
        conversation_id=ids, owner_id=INTRUDER, parent_id=None, content="x", request_id=None
    ),
    "message_create_assistant": lambda ids: services.message_create_assistant(
        conversation_id=ids, owner_id=INTRUDER, parent_id=ids, model="m"
    ),
    "message_get": lambda ids: selectors.message_get(message_id=ids, owner_id=INTRUDER),
    "message_list": lambda ids: selectors.message_list(conversation_id=ids, owner_id=INTRUDER),
    "message_path": lambda ids: selectors.message_path(message_id=ids, owner_id=INTRUDER),
    "message_replies": lambda ids: selectors.message_replies(message_id=ids, owner_id=INTRUDER),
    "message_by_generation": lambda ids: selectors.message_by_generation(
        generation_id=ids, owner_id=INTRUDER
    ),
    "message_by_request": lambda ids: selectors.message_by_request(
        owner_id=INTRUDER, request_id=ids
    ),
    "generation_checkpoint": lambda ids: lifecycle.checkpoint(
        generation_id=ids, owner_id=INTRUDER, text="pwned", seq=99
    ),
    "generation_finish": lambda ids: lifecycle.finish(
        Ending(
            generation_id=ids,
            owner_id=INTRUDER,
            text="pwned",
            state="complete",
            finish_reason="stop",
            seq=99,
        )
    ),
    "message_feedback_set": lambda ids: services.message_feedback_set(
        message_id=ids, owner_id=INTRUDER, rating=1, comment="pwned"
    ),
}
# Which of the victim's ids each call receives.
TARGET = {
    "conversation_get": "conversation",
    "conversation_update": "conversation",
    "conversation_delete": "conversation",
    "message_create_user": "conversation",
    "message_create_assistant": "conversation",
    "message_get": "user",
    "message_list": "conversation",
    "message_path": "answer",
    "message_replies": "user",
    "message_by_generation": "generation",
    "message_by_request": "request",
    "generation_checkpoint": "generation",
    "generation_finish": "generation",
    "message_feedback_set": "answer",
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_another_owners_id_behaves_like_a_missing_one(name: str, victim: dict[str, Any]) -> None:
    before = _snapshot()

    with_victims_id = _outcome(lambda: CALLS[name](victim[TARGET[name]]))
    with_missing_id = _outcome(lambda: CALLS[name](MISSING))

    assert with_victims_id == with_missing_id
    assert _snapshot() == before


def test_a_parent_owned_by_someone_else_is_not_found(victim: dict[str, Any]) -> None:
    mine = services.conversation_create(owner_id=INTRUDER, title="Mine too", model="m")
    before = _snapshot()

    with pytest.raises(ChatError) as error:
        services.message_create_user(
            conversation_id=mine["id"],
            owner_id=INTRUDER,
            parent_id=victim["answer"],
            content="x",
            request_id=None,
        )

    assert error.value.code == "not_found"
    assert _snapshot() == before


def test_search_never_returns_another_owners_conversations(victim: dict[str, Any]) -> None:
    by_text, _ = selectors.conversation_list(owner_id=INTRUDER, q="private words")
    by_title, _ = selectors.conversation_list(owner_id=INTRUDER, q="Private")

    assert by_text == [] and by_title == []


@pytest.mark.parametrize("hostile", [{"$ne": None}, ["x"], 5, None, "x" * 65])
def test_ids_that_are_not_plain_strings_find_nothing(hostile: Any, victim: dict[str, Any]) -> None:
    assert selectors.conversation_get(conversation_id=hostile, owner_id=OWNER) is None
    assert selectors.message_get(message_id=hostile, owner_id=OWNER) is None
    assert selectors.message_by_generation(generation_id=hostile, owner_id=OWNER) is None
    assert selectors.message_by_request(owner_id=OWNER, request_id=hostile) is None
    assert selectors.message_list(conversation_id=hostile, owner_id=OWNER) == []


def test_an_owner_that_is_not_an_integer_is_a_programming_error(store: str) -> None:
    with pytest.raises(TypeError):
        services.conversation_create(owner_id="1", title="x", model="m")  # type: ignore[arg-type]
