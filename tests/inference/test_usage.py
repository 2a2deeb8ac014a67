"""Usage records (PostgreSQL): one per ended generation, however it ended; costs from the
registry; the user's usage endpoint; the admin. Endings go through the real conversation store
(mongomock in tests) and a recording channel layer."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from chat import selectors, services
from chat.generation import lifecycle
from chat.generation.record import Ending
from inference import streaming
from inference.models import LanguageModel, UsageRecord
from inference.services import generation_end, usage_cost, usage_record_create
from tests.inference.fakes import FakeClock, RecordingLayer
from tests.inference.usage_support import record

pytestmark = pytest.mark.django_db


@pytest.fixture
def user() -> Any:
    return get_user_model().objects.create_user(f"u{uuid.uuid4().hex[:8]}@example.org", "pw")


@pytest.fixture
def priced_model() -> LanguageModel:
    return LanguageModel.objects.create(
        name=f"priced-{uuid.uuid4().hex[:6]}",
        display_name="Priced",
        weights="/nowhere",
        price_prompt_per_1k=Decimal("0.5"),
        price_completion_per_1k=Decimal("1.5"),
    )


def stored_generation(owner_id: int, model: str, **marks: Any) -> dict[str, Any]:
    conversation = services.conversation_create(owner_id=owner_id, title="t", model=model)
    question = services.message_create_user(
        conversation_id=conversation["id"],
        owner_id=owner_id,
        parent_id=None,
        content="Hi",
        request_id=uuid.uuid4().hex,
    )
    return services.message_create_assistant(
        conversation_id=conversation["id"],
        owner_id=owner_id,
        parent_id=question["id"],
        model=model,
        **marks,
    )


def test_cost_is_priced_per_thousand_tokens(priced_model: LanguageModel) -> None:
    cost = usage_cost(model=priced_model, prompt_tokens=1000, completion_tokens=2000)

    assert cost == Decimal("3.5")  # 1 x 0.5 + 2 x 1.5
    assert usage_cost(model=None, prompt_tokens=10, completion_tokens=10) == 0


def test_a_generation_is_recorded_once_even_when_recorded_twice(
    user: Any, priced_model: LanguageModel
) -> None:
    fields: dict[str, Any] = {
        "generation_id": uuid.uuid4().hex,
        "user_id": user.pk,
        "model_name": priced_model.name,
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "finish_reason": "stop",
        "time_to_first_token_ms": 80,
        "duration_ms": 900,
    }

    first = usage_record_create(**fields)
    second = usage_record_create(**{**fields, "completion_tokens": 999})

    assert first is not None and second is None
    (record,) = UsageRecord.objects.filter(generation_id=fields["generation_id"])
    assert (record.prompt_tokens, record.completion_tokens) == (100, 20)
    assert record.cost == Decimal("0.08")  # 0.1 x 0.5 + 0.02 x 1.5
    assert record.user == user and record.time_to_first_token_ms == 80


def records_of(generation_id: str) -> list[UsageRecord]:
    from django.db import connection

    try:
        return list(UsageRecord.objects.filter(generation_id=generation_id))
    finally:
        connection.close()  # a worker thread's connection would outlive the test database


async def ended_generation(
    user: Any, model: LanguageModel, *, marks: dict[str, Any] | None = None, **fields: Any
) -> Ending:
    """A stored, still live generation of `user` (with `marks`: its source and API key), and
    an ending for it (`fields` override)."""
    from asgiref.sync import sync_to_async

    assistant = await sync_to_async(stored_generation)(user.pk, model.name, **(marks or {}))
    values: dict[str, Any] = {
        "state": "complete",
        "finish_reason": "stop",
        "text": "partial answer",
        "seq": 2,
        "prompt_tokens": 30,
        "completion_tokens": 4,
        **fields,
    }
    return Ending(
        generation_id=assistant["generation_id"],
        owner_id=user.pk,
        model_name=model.name,
        **values,
    )


ENDINGS: list[dict[str, Any]] = [
    {"state": "complete", "finish_reason": "stop"},
    {"state": "complete", "finish_reason": "length"},
    {"state": "stopped", "finish_reason": "stopped"},
    {"state": "moderated", "finish_reason": "moderated", "categories": ["test"]},
    {"state": "failed", "error_code": "engine_error", "error_message": "failed"},
    {"state": "failed", "error_code": "timeout", "error_message": "too long"},
    {"state": "interrupted", "error_code": "interrupted", "error_message": "gone"},
]


@pytest.mark.django_db(transaction=True)  # written from a worker thread: committed data
@pytest.mark.parametrize("how", ENDINGS, ids=lambda how: how.get("error_code") or how["state"])
async def test_every_ending_writes_exactly_one_record_and_one_closing_message(
    how: dict[str, Any], user: Any, priced_model: LanguageModel
) -> None:
    from asgiref.sync import sync_to_async

    # Error endings have no finish reason.
    how = {"finish_reason": None, **how}
    ending = await ended_generation(user, priced_model, seq_offsets=[7, 14], **how)
    layer = RecordingLayer(FakeClock())

    first = await generation_end(ending, layer=layer)
    again = await generation_end(ending, layer=layer)  # a redelivered task, a second reaper

    assert (first, again) == (True, False)
    records = await sync_to_async(records_of)(ending.generation_id)
    assert len(records) == 1 and records[0].user_id == user.pk
    assert (records[0].source, records[0].api_key_id) == ("ws", None)  # the app's, unmarked
    assert records[0].finish_reason == (how.get("error_code") or how["finish_reason"])
    assert (records[0].prompt_tokens, records[0].completion_tokens) == (30, 4)
    closing = [m for _, _, m in layer.sent if m["type"] in {"generation.done", "generation.error"}]
    assert len(closing) == 1 and closing[0]["text"] == "partial answer"
    stored = await sync_to_async(selectors.message_by_generation)(
        generation_id=ending.generation_id, owner_id=user.pk
    )
    assert stored["state"] == how["state"]
    assert stored["seq_offsets"] == [7, 14]
    if how["state"] == "moderated":
        assert stored["moderation"]["categories"] == ["test"]
        assert [m["type"] for _, _, m in layer.sent] == ["moderation.blocked", "generation.done"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("bill_first", [False, True], ids=["worker", "reaper"])
async def test_a_generation_the_api_asked_for_is_billed_as_the_apis_with_its_key(
    bill_first: bool, user: Any, priced_model: LanguageModel
) -> None:
    from asgiref.sync import sync_to_async

    ending = await ended_generation(user, priced_model, marks={"source": "api", "api_key_id": 41})

    assert await generation_end(ending, layer=RecordingLayer(FakeClock()), bill_first=bill_first)

    (bill,) = await sync_to_async(records_of)(ending.generation_id)
    assert (bill.source, bill.api_key_id) == ("api", 41)


@pytest.mark.parametrize(
    "marks", [{"source": "carrier-pigeon"}, {"api_key_id": "41"}, {"api_key_id": True}]
)
def test_a_generation_refuses_an_unknown_source_or_a_key_id_that_is_no_integer(
    user: Any, marks: dict[str, Any]
) -> None:
    from chat.errors import ChatError

    with pytest.raises(ChatError) as refused:
        stored_generation(user.pk, "m", **marks)

    assert refused.value.code == "bad_request" and set(refused.value.fields) == set(marks)


class BillWatchingLayer(RecordingLayer):
    """Counts the usage records of the generation at the moment its closing message leaves."""

    records_at_close: int | None = None

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        from asgiref.sync import sync_to_async

        if message["type"] == "generation.done":
            found = await sync_to_async(records_of)(message["generation_id"])
            self.records_at_close = len(found)
        await super().group_send(group, message)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("bill_first", [False, True], ids=["worker", "reaper"])
async def test_the_worker_tells_the_client_before_billing_and_the_reaper_after(
    bill_first: bool, user: Any, priced_model: LanguageModel
) -> None:
    from asgiref.sync import sync_to_async

    ending = await ended_generation(user, priced_model)
    layer = BillWatchingLayer(FakeClock())

    assert await generation_end(ending, layer=layer, bill_first=bill_first)

    # The worker's client waits for no bookkeeping; the reaper, which nothing retries, bills
    # before anything else can go wrong.
    assert layer.records_at_close == (1 if bill_first else 0)
    assert len(await sync_to_async(records_of)(ending.generation_id)) == 1


@pytest.mark.django_db(transaction=True)
async def test_a_redelivered_task_bills_a_generation_whose_worker_died_before_billing(
    user: Any, priced_model: LanguageModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asgiref.sync import sync_to_async

    ending = await ended_generation(
        user,
        priced_model,
        state="stopped",
        finish_reason="stopped",
        text="half an answer",
        prompt_tokens=40,
        completion_tokens=7,
    )
    generation_id = ending.generation_id
    # The first attempt stored the end and told the client, then its worker was killed.
    assert await sync_to_async(lifecycle.finish)(ending) is not None
    assert await sync_to_async(records_of)(generation_id) == []
    layer = RecordingLayer(FakeClock())
    monkeypatch.setattr(streaming, "get_channel_layer", lambda: layer)

    await streaming.generation_run(generation_id=generation_id, owner_id=user.pk)
    await streaming.generation_run(generation_id=generation_id, owner_id=user.pk)  # once more

    (record,) = await sync_to_async(records_of)(generation_id)
    assert (record.prompt_tokens, record.completion_tokens) == (40, 7)
    assert record.finish_reason == "stopped" and record.user_id == user.pk
    assert record.cost == Decimal("0.030500")  # 0.04 x 0.5 + 0.007 x 1.5
    assert layer.sent == []  # the client heard the end from the first attempt
    stored = await sync_to_async(selectors.message_by_generation)(
        generation_id=generation_id, owner_id=user.pk
    )
    assert stored["state"] == "stopped" and stored["content"] == "half an answer"


# --- GET /api/usage ----------------------------------------------------------------------------


def test_usage_lists_the_users_tokens_and_cost_per_day_and_per_model(user: Any) -> None:
    other = get_user_model().objects.create_user("other@example.org", "pw")
    record(user, "a", tokens=(100, 10))
    record(user, "a", tokens=(50, 5))
    record(user, "b", days_ago=1)
    record(user, "b", days_ago=40)  # outside the default 30 days
    record(other, "a", tokens=(9999, 9999))
    client = Client()
    client.force_login(user)

    body = client.get("/api/usage").json()

    assert body["total"]["prompt_tokens"] == 160 and body["total"]["completion_tokens"] == 20
    assert body["total"]["generations"] == 3
    by_model = {row["model"]: row for row in body["per_model"]}
    assert by_model["a"]["total_tokens"] == 165 and by_model["a"]["cost"] == 0.5
    assert by_model["b"]["generations"] == 1
    assert [row["generations"] for row in body["per_day"]] == [2, 1]  # newest first
    assert body["quota"]["tokens_today"] == 165
    assert "daily_messages" in body["quota"]


def test_usage_breaks_the_users_tokens_down_by_source_every_source_listed(user: Any) -> None:
    other = get_user_model().objects.create_user("other@example.org", "pw")
    record(user, "a", tokens=(100, 10), source="api")
    record(user, "a", tokens=(50, 5), source="api")
    record(user, "b", tokens=(1, 2))
    record(user, "b", days_ago=40, source="api")  # outside the default 30 days
    record(other, "a", tokens=(9999, 9999), source="api")
    client = Client()
    client.force_login(user)

    per_source = client.get("/api/usage").json()["per_source"]
    quiet = Client()
    quiet.force_login(other)
    other_per_source = quiet.get("/api/usage?days=1").json()["per_source"]

    assert per_source == [
        {"source": "ws", "generations": 1, "prompt_tokens": 1, "completion_tokens": 2,
         "total_tokens": 3, "cost": 0.25},
        {"source": "api", "generations": 2, "prompt_tokens": 150, "completion_tokens": 15,
         "total_tokens": 165, "cost": 0.5},
    ]  # fmt: skip
    assert [(row["source"], row["generations"]) for row in other_per_source] == [
        ("ws", 0),
        ("api", 1),
    ]


def test_usage_needs_authentication_and_a_valid_range(user: Any) -> None:
    client = Client()
    assert client.get("/api/usage").status_code == 401
    client.force_login(user)

    for bad in ("0", "-1", "abc", "1000"):
        response = client.get(f"/api/usage?days={bad}")
        assert response.status_code == 400
        assert response.json()["error"]["fields"]["days"]
    assert client.get("/api/usage?days=1").status_code == 200


def test_the_admin_lists_usage_with_per_model_and_per_user_filters(user: Any) -> None:
    admin = get_user_model().objects.create_superuser("admin@example.org", "pw")
    record(user, "alpha", tokens=(7, 3))
    record(admin, "beta", tokens=(1, 1))
    client = Client()
    client.force_login(admin)

    everything = client.get("/admin/inference/usagerecord/")
    alpha = client.get("/admin/inference/usagerecord/?model=alpha")
    mine = client.get(f"/admin/inference/usagerecord/?user__id__exact={user.pk}")

    assert everything.status_code == alpha.status_code == mine.status_code == 200
    assert alpha.context["cl"].result_count == 1
    assert "7 prompt + 3 completion tokens" in alpha.content.decode()
    assert [r.model for r in mine.context["cl"].result_list] == ["alpha"]
    assert client.get("/admin/inference/usagerecord/add/").status_code == 403
