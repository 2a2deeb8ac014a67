"""Which model version writes an answer: the canary's share of conversations (a stable hash of
the conversation), kept by the conversation until the user regenerates, and recorded on every
stored answer. PostgreSQL for the versions, the store on mongomock."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chat import selectors
from chat.generation import versions
from chat.generation.admission import chat_send_prepare, generation_regenerate_prepare
from chat.protocol import ChatSend
from inference import versions as registry
from inference.models import ModelVersion
from tests.chat.consumer_support import Dispatched

pytest_plugins = ["tests.chat.consumer_support"]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def v1(default_model: Any) -> ModelVersion:
    version, _ = ModelVersion.objects.get_or_create(
        model=default_model, label="v1", defaults={"weights": "w1", "state": "active"}
    )
    return version


@pytest.fixture
def v2(default_model: Any, v1: ModelVersion) -> ModelVersion:
    return ModelVersion.objects.create(model=default_model, label="v2", weights="w2")


@pytest.fixture
def roomy(settings: Any) -> None:
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 1000
    settings.CHAT_RATE_PER_MINUTE = 0
    settings.CHAT_RATE_PER_DAY = 0


def test_the_bucket_is_stable_and_spreads_evenly() -> None:
    assert versions.bucket("abc") == versions.bucket("abc")
    assert 0 <= versions.bucket("abc") < versions.BUCKETS
    counts = [0] * 10
    for number in range(10_000):
        counts[versions.bucket(f"id-{number}") * 10 // versions.BUCKETS] += 1
    assert all(900 <= count <= 1100 for count in counts), counts


@pytest.mark.parametrize("share", [1, 10, 50, 90])
def test_ten_thousand_conversations_meet_the_canary_share(
    share: int, v2: ModelVersion, default_model: Any
) -> None:
    registry.version_canary_start(version=v2, share=share)
    serving = versions.serving(model_name=default_model.name)

    picks = [versions.choose(serving, key=uuid.uuid4().hex) for _ in range(10_000)]

    canary = sum(pick is not None and pick["label"] == "v2" for pick in picks) / 10_000
    assert abs(canary - share / 100) <= 0.02, canary
    assert all(pick is not None for pick in picks)


def test_no_canary_means_the_active_version_and_no_versions_means_none(
    v1: ModelVersion, default_model: Any
) -> None:
    serving = versions.serving(model_name=default_model.name)
    assert {versions.choose(serving, key=str(n))["label"] for n in range(200)} == {"v1"}  # type: ignore[index]
    assert versions.serving(model_name="no-such-model") == []


def _send(owner_id: int, content: str, conversation_id: str | None = None) -> Any:
    message = ChatSend(
        type="chat.send",
        request_id=uuid.uuid4().hex,
        content=content,
        conversation_id=conversation_id,
    )
    return chat_send_prepare(owner_id=owner_id, priority=5, message=message).accepted


def _answer(owner_id: int, accepted: Any) -> dict[str, Any]:
    found = selectors.message_by_generation(generation_id=accepted.generation_id, owner_id=owner_id)
    assert found is not None
    return found


def test_a_conversation_keeps_its_version_until_the_user_regenerates(
    chat_env: Dispatched, make_user: Any, v1: ModelVersion, v2: ModelVersion, roomy: None
) -> None:
    user = make_user()
    registry.version_canary_start(version=v2, share=100)
    first = _send(user.pk, "Hello")
    answer = _answer(user.pk, first)
    assert (answer["model_version"], answer["model_version_id"]) == ("v2", v2.pk)

    # The canary's share drops: this conversation keeps the canary, a new one gets v1 ...
    registry.version_canary_start(version=v2, share=1)
    later = _send(user.pk, "And then?", conversation_id=first.conversation_id)
    assert _answer(user.pk, later)["model_version"] == "v2"

    # ... until the user regenerates: a new draw (1%: v1 for nearly every key), which the
    # conversation keeps from then on.
    labels = []
    for _ in range(5):
        again = generation_regenerate_prepare(
            owner_id=user.pk,
            priority=5,
            message_id=later.assistant_message_id,
            request_id=uuid.uuid4().hex,
        ).accepted
        labels.append(_answer(user.pk, again)["model_version"])
    assert "v1" in labels
    pinned = labels[-1]
    next_turn = _send(user.pk, "More", conversation_id=first.conversation_id)
    assert _answer(user.pk, next_turn)["model_version"] == pinned


def test_a_pinned_version_that_stops_serving_is_chosen_again(
    chat_env: Dispatched, make_user: Any, v1: ModelVersion, v2: ModelVersion, roomy: None
) -> None:
    user = make_user()
    registry.version_canary_start(version=v2, share=100)
    first = _send(user.pk, "Hello")
    registry.version_canary_stop(version=v2)

    later = _send(user.pk, "Again", conversation_id=first.conversation_id)

    assert _answer(user.pk, later)["model_version"] == "v1"


def test_answers_of_a_model_without_versions_record_none(
    chat_env: Dispatched, make_user: Any, roomy: None
) -> None:
    user = make_user()
    answer = _answer(user.pk, _send(user.pk, "Hello"))

    assert "model_version" not in answer and "model_version_id" not in answer
