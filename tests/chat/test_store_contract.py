"""The conversation store's contract, run on every backend available (`store` fixture):
mongomock, the embedded SQLite stand-in, and a real MongoDB server when MONGODB_URL names one."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError

from chat import selectors, services
from chat.errors import ChatError
from chat.generation import lifecycle
from chat.generation.record import Ending
from chat.store import CONVERSATIONS, MESSAGES, get_db, new_id

OWNER = 1
OTHER = 2


def _conversation(owner_id: int = OWNER, title: str = "A chat") -> dict:
    return services.conversation_create(owner_id=owner_id, title=title, model="m")


def _turn(
    conversation: dict, *, parent_id: str | None = None, content: str = "Hi", request_id=None
) -> tuple[dict, dict]:
    owner_id = conversation["owner_id"]
    user = services.message_create_user(
        conversation_id=conversation["id"],
        owner_id=owner_id,
        parent_id=parent_id,
        content=content,
        request_id=request_id,
    )
    answer = services.message_create_assistant(
        conversation_id=conversation["id"], owner_id=owner_id, parent_id=user["id"], model="m"
    )
    return user, answer


def _raw_snapshot() -> tuple[list[dict], list[dict]]:
    db = get_db()
    return (
        sorted(db[CONVERSATIONS].find({}), key=lambda item: item["_id"]),
        sorted(db[MESSAGES].find({}), key=lambda item: item["_id"]),
    )


def test_a_created_conversation_is_read_back_with_utc_timestamps(store: str) -> None:
    created = services.conversation_create(
        owner_id=OWNER, title="  Trip \n plans ", model="m", system_prompt="Be brief."
    )

    found = selectors.conversation_get(conversation_id=created["id"], owner_id=OWNER)

    assert found == created
    assert found["title"] == "Trip plans"
    assert found["system_prompt"] == "Be brief."
    assert found["current_leaf_id"] is None and found["archived"] is False
    assert found["created_at"].tzinfo == UTC and found["updated_at"] == found["created_at"]
    assert "_id" not in found and len(found["id"]) == 32


def test_the_list_is_newest_first_and_pages_with_a_cursor(store: str) -> None:
    created = [_conversation(title=f"chat {index}") for index in range(25)]
    time.sleep(0.002)  # timestamps have millisecond precision
    services.message_create_user(
        conversation_id=created[3]["id"],
        owner_id=OWNER,
        parent_id=None,
        content="bump",
        request_id=None,
    )

    seen: list[dict] = []
    cursor = None
    pages = 0
    while True:
        page, cursor = selectors.conversation_list(owner_id=OWNER, cursor=cursor, limit=10)
        seen += page
        pages += 1
        if cursor is None:
            break

    assert pages == 3
    assert len({item["id"] for item in seen}) == 25
    assert seen[0]["id"] == created[3]["id"]  # a new message moves it to the top
    keys = [(item["updated_at"], item["id"]) for item in seen]
    assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize("cursor", ["garbage", "eyJ1IjoiIn0:abc:def", "x" * 600])
def test_a_cursor_we_did_not_sign_is_a_bad_request(store: str, cursor: str) -> None:
    _conversation()

    with pytest.raises(ChatError) as error:
        selectors.conversation_list(owner_id=OWNER, cursor=cursor)

    assert error.value.code == "bad_request"


def test_a_tampered_cursor_is_a_bad_request(store: str) -> None:
    for index in range(3):
        _conversation(title=f"chat {index}")
    _, cursor = selectors.conversation_list(owner_id=OWNER, limit=1)
    assert cursor is not None
    payload, _, signature = cursor.rpartition(":")

    with pytest.raises(ChatError):
        selectors.conversation_list(owner_id=OWNER, cursor=payload + ":" + signature[::-1])


def test_the_list_filters_archived_conversations(store: str) -> None:
    kept, archived = _conversation(title="kept"), _conversation(title="old")
    services.conversation_update(conversation_id=archived["id"], owner_id=OWNER, archived=True)

    active, _ = selectors.conversation_list(owner_id=OWNER, archived=False)
    only_archived, _ = selectors.conversation_list(owner_id=OWNER, archived=True)
    both, _ = selectors.conversation_list(owner_id=OWNER)

    assert [item["id"] for item in active] == [kept["id"]]
    assert [item["id"] for item in only_archived] == [archived["id"]]
    assert {item["id"] for item in both} == {kept["id"], archived["id"]}


def test_search_matches_titles_and_message_text_case_insensitively(store: str) -> None:
    by_title = _conversation(title="Paris itinerary")
    by_text = _conversation(title="Untitled")
    _turn(by_text, content="What should I pack for PARIS in May?")
    _conversation(title="Groceries")

    results, _ = selectors.conversation_list(owner_id=OWNER, q="paris")

    assert {item["id"] for item in results} == {by_title["id"], by_text["id"]}


def test_search_treats_pattern_characters_literally(store: str) -> None:
    literal = _conversation(title="Is a+b (c) = .*?")
    _conversation(title="aab c")

    results, _ = selectors.conversation_list(owner_id=OWNER, q="A+B (C)")
    everything, _ = selectors.conversation_list(owner_id=OWNER, q=".*")

    assert [item["id"] for item in results] == [literal["id"]]
    assert [item["id"] for item in everything] == [literal["id"]]


def test_search_refuses_an_overlong_query(store: str) -> None:
    with pytest.raises(ChatError) as error:
        selectors.conversation_list(owner_id=OWNER, q="x" * 201)
    assert error.value.fields == {"q": ["at most 200 characters"]}


def test_update_renames_and_archives_and_refuses_bad_values_unchanged(store: str) -> None:
    conversation = _conversation()

    updated = services.conversation_update(
        conversation_id=conversation["id"], owner_id=OWNER, title="Renamed", archived=True
    )
    before = _raw_snapshot()
    for bad in ({"title": ""}, {"title": "x" * 201}, {"title": 5}, {"archived": "yes"}):
        with pytest.raises(ChatError):
            services.conversation_update(conversation_id=conversation["id"], owner_id=OWNER, **bad)

    assert updated is not None
    assert (updated["title"], updated["archived"]) == ("Renamed", True)
    assert _raw_snapshot() == before


def test_a_model_title_replaces_only_a_provisional_one_of_the_owner(store: str) -> None:
    fresh, renamed, titled = _conversation(), _conversation(), _conversation()
    services.conversation_update(conversation_id=renamed["id"], owner_id=OWNER, title="Mine")
    services.conversation_title_generated(
        conversation_id=titled["id"], owner_id=OWNER, title="First"
    )

    assert fresh["title_source"] == services.TITLE_PROVISIONAL
    assert (
        services.conversation_title_generated(
            conversation_id=fresh["id"], owner_id=OTHER, title="Stolen"
        )
        is None
    )
    stored = services.conversation_title_generated(
        conversation_id=fresh["id"], owner_id=OWNER, title="  Python   lists "
    )
    assert stored is not None
    assert (stored["title"], stored["title_source"]) == ("Python lists", services.TITLE_BY_MODEL)
    for kept, title in ((renamed, "Mine"), (titled, "First")):
        again = services.conversation_title_generated(
            conversation_id=kept["id"], owner_id=OWNER, title="Second"
        )
        assert again is None
        found = selectors.conversation_get(conversation_id=kept["id"], owner_id=OWNER)
        assert found is not None and found["title"] == title


def test_a_deleted_conversation_is_gone_from_every_lookup(store: str) -> None:
    conversation = _conversation(title="secret plans")
    user, answer = _turn(conversation, content="secret text", request_id="req-1")

    assert services.conversation_delete(conversation_id=conversation["id"], owner_id=OWNER)

    assert selectors.conversation_get(conversation_id=conversation["id"], owner_id=OWNER) is None
    assert selectors.conversation_list(owner_id=OWNER) == ([], None)
    assert selectors.conversation_list(owner_id=OWNER, q="secret") == ([], None)
    assert selectors.message_get(message_id=user["id"], owner_id=OWNER) is None
    assert selectors.message_by_request(owner_id=OWNER, request_id="req-1") is None
    gid = answer["generation_id"]
    assert selectors.message_by_generation(generation_id=gid, owner_id=OWNER) is None
    assert selectors.message_list(conversation_id=conversation["id"], owner_id=OWNER) == []
    assert selectors.message_path(message_id=answer["id"], owner_id=OWNER) == []
    finished = lifecycle.finish(
        Ending(
            generation_id=gid,
            owner_id=OWNER,
            text="late",
            state="complete",
            finish_reason="stop",
            seq=1,
        )
    )
    assert finished is None
    assert services.conversation_delete(conversation_id=conversation["id"], owner_id=OWNER) is False


def test_messages_form_a_tree_and_the_path_follows_parents(store: str) -> None:
    conversation = _conversation()
    first_user, first_answer = _turn(conversation, content="one")
    second_user, second_answer = _turn(conversation, parent_id=first_answer["id"], content="two")
    edited_user, edited_answer = _turn(conversation, parent_id=first_answer["id"], content="2!")
    regenerated = services.message_create_assistant(
        conversation_id=conversation["id"], owner_id=OWNER, parent_id=first_user["id"], model="m"
    )

    listed = selectors.message_list(conversation_id=conversation["id"], owner_id=OWNER)
    path = selectors.message_path(message_id=edited_answer["id"], owner_id=OWNER)
    replies = selectors.message_replies(message_id=first_user["id"], owner_id=OWNER)
    stored = selectors.conversation_get(conversation_id=conversation["id"], owner_id=OWNER)

    assert [m["id"] for m in listed] == [
        m["id"]
        for m in (
            first_user,
            first_answer,
            second_user,
            second_answer,
            edited_user,
            edited_answer,
            regenerated,
        )
    ]
    assert [m["content"] for m in path[:3]] == ["one", "", "2!"]
    assert [m["id"] for m in path] == [
        first_user["id"],
        first_answer["id"],
        edited_user["id"],
        edited_answer["id"],
    ]
    assert [m["id"] for m in replies] == [first_answer["id"], regenerated["id"]]
    assert stored is not None
    assert stored["current_leaf_id"] == regenerated["id"]
    assert stored["message_count"] == 7
    assert second_user["parent_id"] == first_answer["id"] and first_user["parent_id"] is None
    assert regenerated["state"] == "queued" and regenerated["generation_id"] not in {
        first_answer["generation_id"],
        second_answer["generation_id"],
    }


def test_a_parent_from_another_conversation_is_not_found(store: str) -> None:
    one, two = _conversation(), _conversation()
    user, _ = _turn(one)
    before = _raw_snapshot()

    with pytest.raises(ChatError) as error:
        _turn(two, parent_id=user["id"])

    assert error.value.code == "not_found"
    assert _raw_snapshot() == before


def test_an_answer_must_hang_under_a_user_message(store: str) -> None:
    conversation = _conversation()
    _, answer = _turn(conversation)

    with pytest.raises(ChatError) as error:
        services.message_create_assistant(
            conversation_id=conversation["id"], owner_id=OWNER, parent_id=answer["id"], model="m"
        )

    assert error.value.code == "bad_request"


def test_an_answer_takes_the_generation_id_its_caller_chose_and_refuses_a_non_id(
    store: str,
) -> None:
    conversation = _conversation()
    user, _ = _turn(conversation)
    chosen = new_id()
    answer_to_user = functools.partial(
        services.message_create_assistant,
        conversation_id=conversation["id"],
        owner_id=OWNER,
        parent_id=user["id"],
        model="m",
    )

    answer = answer_to_user(generation_id=chosen)
    before = _raw_snapshot()
    with pytest.raises(ChatError) as error:
        answer_to_user(generation_id={"$ne": None})  # type: ignore[arg-type]

    assert answer["generation_id"] == chosen
    assert selectors.message_by_generation(generation_id=chosen, owner_id=OWNER) == answer
    assert error.value.code == "bad_request"
    assert _raw_snapshot() == before


@pytest.mark.parametrize("content", ["", "   ", None])
def test_empty_user_content_is_refused(store: str, content: Any) -> None:
    conversation = _conversation()
    with pytest.raises(ChatError):
        _turn(conversation, content=content)
    assert selectors.message_list(conversation_id=conversation["id"], owner_id=OWNER) == []


def test_checkpoints_stream_and_a_generation_finishes_only_once(store: str) -> None:
    _, answer = _turn(_conversation())
    gid = answer["generation_id"]

    lifecycle.checkpoint(generation_id=gid, owner_id=OWNER, text="Hel", seq=2)
    lifecycle.checkpoint(generation_id=gid, owner_id=OWNER, text="H", seq=1)  # stale
    streaming = selectors.message_by_generation(generation_id=gid, owner_id=OWNER)
    first = lifecycle.finish(
        Ending(
            generation_id=gid,
            owner_id=OWNER,
            text="Hello",
            state="complete",
            finish_reason="stop",
            prompt_tokens=5,
            completion_tokens=2,
            seq=3,
        )
    )
    second = lifecycle.finish(
        Ending(
            generation_id=gid,
            owner_id=OWNER,
            text="Other",
            state="failed",
            finish_reason=None,
            seq=4,
        )
    )
    lifecycle.checkpoint(generation_id=gid, owner_id=OWNER, text="late", seq=9)
    final = selectors.message_by_generation(generation_id=gid, owner_id=OWNER)

    assert streaming is not None
    assert (streaming["state"], streaming["content"], streaming["seq"]) == ("streaming", "Hel", 2)
    assert streaming["heartbeat_at"] >= answer["heartbeat_at"]
    assert first is not None and first["state"] == "complete"
    assert second is None
    assert final is not None
    assert (final["content"], final["state"], final["seq"]) == ("Hello", "complete", 3)
    assert final["usage"] == {"prompt_tokens": 5, "completion_tokens": 2}
    assert final["finish_reason"] == "stop"


def test_finishing_needs_a_final_state(store: str) -> None:
    _, answer = _turn(_conversation())
    with pytest.raises(ValueError):
        lifecycle.finish(
            Ending(
                generation_id=answer["generation_id"],
                owner_id=OWNER,
                text="",
                state="streaming",
                finish_reason=None,
                seq=0,
            )
        )


def test_a_request_id_stores_one_message_per_owner(store: str) -> None:
    conversation = _conversation()
    original, _ = _turn(conversation, request_id="req-7")

    with pytest.raises(DuplicateKeyError):
        _turn(conversation, request_id="req-7", content="again")
    other_conversation = _conversation(owner_id=OTHER)
    others, _ = _turn(other_conversation, request_id="req-7")

    found = selectors.message_by_request(owner_id=OWNER, request_id="req-7")
    stored = selectors.conversation_get(conversation_id=conversation["id"], owner_id=OWNER)
    assert found is not None and found["id"] == original["id"]
    assert others["id"] != original["id"]
    assert stored is not None and stored["message_count"] == 2
    assert len(selectors.message_list(conversation_id=conversation["id"], owner_id=OWNER)) == 2


def test_feedback_is_for_answers_and_is_validated(store: str) -> None:
    user, answer = _turn(_conversation())

    rated = services.message_feedback_set(
        message_id=answer["id"], owner_id=OWNER, rating=-1, comment="wrong"
    )
    before = _raw_snapshot()
    refused = []
    for kwargs in (
        {"message_id": user["id"], "rating": 1, "comment": ""},
        {"message_id": answer["id"], "rating": 2, "comment": ""},
        {"message_id": answer["id"], "rating": True, "comment": ""},
        {"message_id": answer["id"], "rating": 1, "comment": "x" * 2001},
    ):
        with pytest.raises(ChatError) as error:
            services.message_feedback_set(owner_id=OWNER, **kwargs)
        refused.append(error.value.code)

    assert rated is not None and rated["feedback"] == {"rating": -1, "comment": "wrong"}
    assert refused == ["bad_request"] * 4
    assert _raw_snapshot() == before


def test_stale_generations_are_listed_for_the_reaper(store: str) -> None:
    conversation = _conversation()
    _, stuck = _turn(conversation)
    _, done = _turn(conversation, parent_id=stuck["id"])
    for answer in (stuck, done):
        lifecycle.checkpoint(generation_id=answer["generation_id"], owner_id=OWNER, text="x", seq=1)
    lifecycle.finish(
        Ending(
            generation_id=done["generation_id"],
            owner_id=OWNER,
            text="x",
            state="complete",
            finish_reason="stop",
            seq=1,
        )
    )

    stale = selectors.generation_list_stale(heartbeat_before=datetime.now(UTC) + timedelta(1))
    fresh = selectors.generation_list_stale(heartbeat_before=datetime.now(UTC) - timedelta(1))

    assert [(m["id"], m["owner_id"]) for m in stale] == [(stuck["id"], OWNER)]
    assert fresh == []
