"""Automatic titles (inference.titles): what counts as a title, when one is wanted, and the task's
work with a scripted engine on the real (mongomock) store. The real engine writes one in
tests/e2e/test_walking_skeleton.py."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from pytest_django import Settings

from chat import selectors, services
from chat.generation import lifecycle
from chat.generation.record import Ending
from inference import titles
from inference.engine import host
from moderation import state
from moderation.services import rule_create
from tests.inference.fakes import FakeClock, FakeEngine, RecordingLayer
from tests.inference.test_queue import FakeTokenizer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_store")]

OWNER = 41


@pytest.mark.parametrize(
    ("raw", "title"),
    [
        ("List Reversal in Python", "List Reversal in Python"),
        ('Title: "Capital of France".', "Capital of France"),
        ("**Volcano Eruptions**\nMore text on a second line", "Volcano Eruptions"),
        ("\n\n  # Greeting  ", "Greeting"),
        (
            "Lighthouse keeper and Storm: A tale of Hope and Resilience in the dark of night",
            "Lighthouse keeper and Storm: A tale of Hope and Resilience…",
        ),
        ("How to Reverse a List in Python in Python", "How to Reverse a List in Python"),
        ("Hello, Hello, Hello", "Hello"),
        ("Bora Bora Travel Tips", "Bora Bora Travel Tips"),
        ("Go go go go", "Go"),
        ("", None),
        ("  ...  ", None),
        ("42", None),
    ],
)
def test_the_reply_is_cleaned_into_a_title(raw: str, title: str | None) -> None:
    cleaned = titles.title_clean(raw)
    assert cleaned == title
    assert cleaned is None or len(cleaned) <= titles.TITLE_CHARS


def test_the_request_asks_with_examples_and_an_excerpt_of_the_first_message() -> None:
    messages = titles.title_messages("word " * 1000)

    assert messages[0]["role"] == "system"
    assert [m["role"] for m in messages[1:]] == ["user", "assistant"] * len(titles.EXAMPLES) + [
        "user"
    ]
    assert messages[-1]["content"].startswith('Message: "word word')
    assert len(messages[-1]["content"]) == titles.EXCERPT_CHARS + len('Message: ""\nTitle:')


def _turn(
    conversation: dict, *, parent_id: str | None, content: str, state: str = "complete"
) -> dict:
    """A question under `parent_id` and its answer, ended in `state` with `content`."""
    question = services.message_create_user(
        conversation_id=conversation["id"],
        owner_id=OWNER,
        parent_id=parent_id,
        content="How do I reverse a list?",
        request_id=None,
    )
    answer = services.message_create_assistant(
        conversation_id=conversation["id"],
        owner_id=OWNER,
        parent_id=question["id"],
        model="smollm2-135m",
    )
    final = lifecycle.finish(
        Ending(
            generation_id=answer["generation_id"],
            owner_id=OWNER,
            text=content,
            state=state,
            finish_reason="stop",
            seq=1,
        )
    )
    assert final is not None
    return final


def _answered(
    *, content: str = "Reverse it with reversed().", state: str = "complete"
) -> tuple[dict, dict]:
    conversation = services.conversation_create(
        owner_id=OWNER, title="How do I reverse a list?", model="smollm2-135m"
    )
    return conversation, _turn(conversation, parent_id=None, content=content, state=state)


def test_only_the_first_answer_of_a_provisional_conversation_wants_a_title() -> None:
    conversation, first = _answered()
    assert titles.title_wanted(final=first, owner_id=OWNER)
    assert not titles.title_wanted(final=first, owner_id=OWNER + 1)  # not theirs

    _, stopped = _answered(state="stopped")
    _, stopped_early = _answered(state="stopped", content="")
    _, moderated = _answered(state="moderated")
    _, failed = _answered(state="failed")
    assert titles.title_wanted(final=stopped, owner_id=OWNER)
    for unfit in (stopped_early, moderated, failed):
        assert not titles.title_wanted(final=unfit, owner_id=OWNER)

    second = _turn(conversation, parent_id=first["id"], content="Yes.")
    assert second is not None and not titles.title_wanted(final=second, owner_id=OWNER)

    services.conversation_update(conversation_id=conversation["id"], owner_id=OWNER, title="Mine")
    assert not titles.title_wanted(final=first, owner_id=OWNER)


def test_the_title_task_goes_last_on_the_models_queue(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config.celery import app

    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(app, "send_task", lambda name, **options: sent.append((name, options)))
    settings.INFERENCE_AUTO_TITLES = True
    _, final = _answered()

    assert titles.title_dispatch(final=final, owner_id=OWNER)
    ((name, options),) = sent
    assert name == titles.TITLE_TASK == "inference.title"
    assert options["queue"] == "inference.smollm2-135m"
    assert options["priority"] == 9  # Celery's Redis transport serves 0 first
    assert options["kwargs"] == {"generation_id": final["generation_id"], "owner_id": OWNER}

    settings.INFERENCE_AUTO_TITLES = False
    assert not titles.title_dispatch(final=final, owner_id=OWNER)
    assert len(sent) == 1


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A scripted engine behind the host, with a word-count tokenizer."""

    def install(reply: str) -> FakeEngine:
        engine = FakeEngine(pieces=[reply], clock=FakeClock())
        engine.get_tokenizer = FakeTokenizer  # type: ignore[attr-defined]
        monkeypatch.setattr(host, "engine_for", lambda spec: engine)
        return engine

    return install


async def _run(final: dict) -> tuple[str | None, RecordingLayer]:
    layer = RecordingLayer(FakeClock())
    title = await titles.title_run(
        generation_id=final["generation_id"], owner_id=OWNER, layer=layer
    )
    return title, layer


async def test_the_model_title_is_stored_and_sent_to_the_users_connections(
    scripted: Any, settings: Settings
) -> None:
    from asgiref.sync import sync_to_async

    engine = scripted("Title: List Reversal.")
    conversation, final = await sync_to_async(_answered)()

    title, layer = await _run(final)

    assert title == "List Reversal"
    assert engine.priorities == [titles.VLLM_PRIORITY]  # after every user's generation
    ((_, group, event),) = layer.sent
    assert group == f"user.{OWNER}"
    assert event == {
        "type": "conversation.updated",
        "conversation_id": conversation["id"],
        "title": "List Reversal",
        "archived": False,
        "deleted": False,
    }
    stored = await sync_to_async(selectors.conversation_get)(
        conversation_id=conversation["id"], owner_id=OWNER
    )
    assert stored is not None and stored["title"] == "List Reversal"


def _block_rule(word: str) -> None:
    try:
        rule_create(pattern=word, categories=["violence"], direction="output")
    finally:
        connection.close()  # a thread of sync_to_async's: no session left at teardown


@pytest.mark.django_db(transaction=True)  # rule edits publish their version on commit
@pytest.mark.parametrize("reply", ["", "!!!", "All about zorblax"])
async def test_an_unusable_or_blocked_title_keeps_the_provisional_one(
    scripted: Any, reply: str
) -> None:
    from asgiref.sync import sync_to_async

    state.reset_local()
    await sync_to_async(_block_rule)("zorblax")
    scripted(reply)
    conversation, final = await sync_to_async(_answered)()

    title, layer = await _run(final)

    assert title is None and layer.sent == []
    stored = await sync_to_async(selectors.conversation_get)(
        conversation_id=conversation["id"], owner_id=OWNER
    )
    assert stored is not None and stored["title"] == "How do I reverse a list?"
    assert stored["title_source"] == services.TITLE_PROVISIONAL
