"""The chat consumer, message by message: success and every error path, in process
(`WebsocketCommunicator`) with the real auth middleware, the store on mongomock, PostgreSQL and
real Redis. Every frame the server sends is validated against `chat.protocol`."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings as django_settings
from pytest_django import Settings

from accounts.models import User
from chat import limits, selectors
from chat.generation import admission, deltas, lifecycle, names, slots, stop, waiting
from chat.generation.record import Ending
from tests.chat.consumer_support import QUEUE, Dispatched, connect, publish
from tests.chat.store_view import stored_snapshot

pytest_plugins = ["tests.chat.consumer_support"]
pytestmark = pytest.mark.django_db(transaction=True)


async def test_ping_is_answered_with_pong(chat_env: Dispatched, make_user: Any) -> None:
    client = await connect(await sync_to_async(make_user)())

    await client.send({"type": "ping"})

    assert await client.receive() == {"type": "pong"}
    await client.close()


async def test_chat_send_stores_the_message_and_a_queued_answer_then_dispatches_it(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)

    accepted = await client.chat_send("Plan a trip to Lisbon", request_id="r-1")
    updated = await client.receive()

    assert accepted["type"] == "chat.accepted" and accepted["request_id"] == "r-1"
    assert accepted["user_message"]["content"] == "Plan a trip to Lisbon"
    assert updated == {
        "type": "conversation.updated",
        "conversation_id": accepted["conversation_id"],
        "title": "Plan a trip to Lisbon",
        "archived": False,
        "deleted": False,
    }
    await client.settle()
    message = await sync_to_async(selectors.message_get)(
        message_id=accepted["user_message"]["id"], owner_id=user.pk
    )
    assert (message["role"], message["content"]) == ("user", "Plan a trip to Lisbon")
    assert message["conversation_id"] == accepted["conversation_id"]
    answer = await sync_to_async(selectors.message_by_generation)(
        generation_id=accepted["generation_id"], owner_id=user.pk
    )
    assert answer["state"] == "queued"
    assert answer["parent_id"] == accepted["user_message"]["id"]
    assert chat_env.generation_ids == [accepted["generation_id"]]
    assert chat_env.tasks[0]["queue"] == QUEUE
    assert waiting.position(queue=QUEUE, generation_id=accepted["generation_id"]) == 1
    assert await sync_to_async(slots.held)(owner_id=user.pk) == [accepted["generation_id"]]
    await client.close()


async def test_a_delta_published_as_soon_as_the_task_is_enqueued_follows_the_acceptance(
    chat_env: Dispatched, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fastest possible worker: its first delta is out before `send_task` even returns.
    # The consumer joined the answer's group before enqueueing it, so nothing is lost, and
    # the client still hears of the answer (`chat.accepted`) before any of its text.
    def send_task_and_stream(name: str, **options: Any) -> None:
        chat_env.tasks.append({"name": name, **options})
        generation_id = options["kwargs"]["generation_id"]
        async_to_sync(publish)(generation_id, delta(generation_id, 1, "Quick"))

    monkeypatch.setattr(admission.celery_app, "send_task", send_task_and_stream)
    client = await connect(await sync_to_async(make_user)())

    accepted = await client.chat_send("Hello")
    frames = [await client.receive(), await client.receive()]

    assert accepted["type"] == "chat.accepted"
    assert delta(accepted["generation_id"], 1, "Quick") in frames
    await client.close()


async def test_a_refused_or_repeated_send_leaves_the_connection_in_no_group_of_its_own(
    chat_env: Dispatched, make_user: Any, isolated_redis: str
) -> None:
    # The consumer joins a new answer's group before storing it; a refusal (nothing stored)
    # or a repeated request_id (the first answer's group instead) must leave it again.
    user = await sync_to_async(make_user)()
    client = await connect(user)
    first = await client.chat_send("Once", request_id="same")
    await client.receive()  # conversation.updated
    refused = await client.chat_send("Elsewhere", conversation_id="does-not-exist")
    again = await client.chat_send("Once", request_id="same")
    await client.settle()

    assert (first["type"], refused["code"]) == ("chat.accepted", "not_found")
    assert again == first
    # The channel layer subscribes a process to each group one of its connections is in.
    layer = redis.Redis.from_url(django_settings.REDIS_URL)
    groups = {
        name.decode().split("__group__", 1)[1]
        for name in layer.pubsub_channels(f"{isolated_redis}__group__gen.*")
    }
    layer.close()
    assert groups == {names.group(first["generation_id"])}
    await client.close()


async def test_a_follow_up_answers_from_the_current_leaf_and_options_are_clamped(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)
    first = await client.chat_send("First")
    await client.receive()  # conversation.updated

    second = await client.chat_send(
        "Second",
        conversation_id=first["conversation_id"],
        options={"max_tokens": 999_999, "temperature": 0.2},
    )

    assert second["type"] == "chat.accepted"
    assert second["user_message"]["parent_id"] == first["assistant_message_id"]
    answer = await sync_to_async(selectors.message_by_generation)(
        generation_id=second["generation_id"], owner_id=user.pk
    )
    assert answer["options"] == {"max_tokens": 2048, "temperature": 0.2}
    await client.assert_quiet_then_pong()  # no conversation.updated for an existing conversation
    await client.close()


async def test_a_repeated_request_id_gets_the_same_acceptance_and_creates_nothing(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)
    first = await client.chat_send("Once only", request_id="same")
    await client.receive()  # conversation.updated
    await client.settle()
    before = await stored_snapshot(user.pk)

    again = await client.chat_send("Once only", request_id="same")

    assert again == first
    assert await stored_snapshot(user.pk) == before
    # The repeat re-attaches the client to the generation, which is still queued.
    assert (await client.receive())["type"] == "generation.queued"
    await client.settle()
    assert len(chat_env.tasks) == 1
    await client.close()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"content": "   "}, "bad_request"),
        ({"content": "x" * 101}, "too_large"),
        ({"conversation_id": "does-not-exist"}, "not_found"),
        ({"model": "no-such-model"}, "not_found"),
        ({"parent_id": "p"}, "bad_request"),
        ({"options": {"temperature": 5}}, "bad_request"),
        ({"surprise": 1}, "bad_request"),
    ],
)
async def test_a_refused_chat_send_names_its_request_and_stores_nothing(
    chat_env: Dispatched, make_user: Any, settings: Settings, fields: dict, code: str
) -> None:
    settings.CHAT_MAX_CONTENT_CHARS = 100
    user = await sync_to_async(make_user)()
    client = await connect(user)

    refused = await client.chat_send(request_id="r-bad", **{"content": "hi", **fields})

    assert refused["type"] == "error"
    assert (refused["code"], refused["request_id"]) == (code, "r-bad")
    assert await stored_snapshot(user.pk) == ([], [])
    assert chat_env.tasks == []
    await client.close()


async def test_oversized_content_is_refused_before_any_work_that_grows_with_it(
    chat_env: Dispatched, make_user: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.CHAT_MAX_CONTENT_CHARS = 100
    from chat import consumers
    from moderation import prefetch
    from moderation import services as moderation_services

    work: list[str] = []
    monkeypatch.setattr(
        prefetch, "input_prefetched", lambda *texts: work.append("embedding") or None
    )
    monkeypatch.setattr(
        moderation_services.pipeline, "run", lambda *a, **k: work.append("moderation")
    )
    monkeypatch.setattr(
        consumers.limits, "message_rate_allows", lambda **k: work.append("rate") or True
    )
    user = await sync_to_async(make_user)()
    client = await connect(user)

    refused = await client.chat_send(request_id="r-big", content="_" * 30_000)

    assert (refused["type"], refused["code"]) == ("error", "too_large")
    assert work == []
    assert await stored_snapshot(user.pk) == ([], [])
    await client.close()


async def test_an_explicit_null_parent_starts_a_new_root_so_the_first_message_can_be_edited(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)
    first = await client.chat_send("Frist question")
    await client.receive()  # conversation.updated
    conversation_id = first["conversation_id"]

    edited = await client.chat_send(
        "First question", conversation_id=conversation_id, parent_id=None
    )

    assert edited["type"] == "chat.accepted"
    assert edited["user_message"]["parent_id"] is None
    assert edited["conversation_id"] == conversation_id
    conversation = await sync_to_async(selectors.conversation_get)(
        conversation_id=conversation_id, owner_id=user.pk
    )
    assert conversation["current_leaf_id"] == edited["assistant_message_id"]
    _, messages = await stored_snapshot(user.pk)
    roots = [m["content"] for m in messages if m["role"] == "user" and m["parent_id"] is None]
    assert sorted(roots) == ["First question", "Frist question"]
    await client.close()


async def test_a_parent_from_another_conversation_is_not_found(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)
    one = await client.chat_send("One")
    await client.receive()
    two = await client.chat_send("Two")
    await client.receive()
    before = await stored_snapshot(user.pk)

    refused = await client.chat_send(
        "Branch", conversation_id=one["conversation_id"], parent_id=two["user_message"]["id"]
    )

    assert refused["code"] == "not_found"
    assert await stored_snapshot(user.pk) == before
    await client.close()


async def test_messages_past_the_per_minute_limit_are_rate_limited(
    chat_env: Dispatched, make_user: Any, settings: Settings
) -> None:
    settings.CHAT_RATE_PER_MINUTE = 2
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 10
    client = await connect(await sync_to_async(make_user)())
    for _ in range(2):
        assert (await client.chat_send())["type"] == "chat.accepted"
        await client.receive()

    refused = await client.chat_send()
    await client.settle()

    assert refused["code"] == "rate_limited"
    assert 1 <= refused["retry_after"] <= 60
    assert len(chat_env.tasks) == 2
    await client.close()


async def test_only_messages_the_rate_limit_lets_through_are_embedded_ahead(
    chat_env: Dispatched, make_user: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moderation import prefetch

    embedded: list[list[str]] = []
    monkeypatch.setattr(prefetch, "_semantic_prefetch", lambda texts: embedded.append(texts) or {})
    settings.CHAT_RATE_PER_MINUTE = 1
    client = await connect(await sync_to_async(make_user)())
    assert (await client.chat_send(content="first"))["type"] == "chat.accepted"
    await client.receive()

    refused = await client.chat_send(content="second")
    await client.settle()

    assert refused["code"] == "rate_limited"
    assert embedded == [["first"]]
    await client.close()


async def test_the_daily_quota_is_answered_with_quota_exceeded(
    chat_env: Dispatched, make_user: Any, settings: Settings
) -> None:
    settings.CHAT_DAILY_MESSAGE_QUOTA = 1
    client = await connect(await sync_to_async(make_user)())
    await client.chat_send()
    await client.receive()

    refused = await client.chat_send()

    assert refused["code"] == "quota_exceeded"
    assert refused["retry_after"] > 3600
    await client.close()


async def test_concurrent_generations_are_limited_until_one_ends(
    chat_env: Dispatched, make_user: Any, settings: Settings
) -> None:
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 1
    user = await sync_to_async(make_user)()
    client = await connect(user)
    first = await client.chat_send()
    await client.receive()

    refused = await client.chat_send()
    assert (refused["code"], refused["retry_after"]) == (
        "rate_limited",
        slots.RETRY_AFTER_SECONDS,
    )

    # The worker ends the generation (which frees its slot), then tells the clients.
    ending = Ending(
        generation_id=first["generation_id"],
        owner_id=user.pk,
        state="complete",
        text="",
        seq=0,
        finish_reason="stop",
    )
    assert await sync_to_async(lifecycle.finish)(ending) is not None
    await publish(
        first["generation_id"],
        {
            "type": "generation.done",
            "generation_id": first["generation_id"],
            "finish_reason": "stop",
            "text": "",
            "usage": {"prompt_tokens": 1, "completion_tokens": 0},
        },
    )
    assert (await client.receive())["type"] == "generation.done"
    assert (await client.chat_send())["type"] == "chat.accepted"
    await client.close()


async def test_a_full_model_queue_is_answered_busy_and_nothing_is_stored(
    chat_env: Dispatched, make_user: Any, settings: Settings
) -> None:
    settings.CHAT_MAX_QUEUE_DEPTH = 1
    other = await connect(await sync_to_async(make_user)())
    await other.chat_send()  # one generation now waits on the queue
    user = await sync_to_async(make_user)()
    client = await connect(user)

    refused = await client.chat_send()

    assert (refused["code"], refused["retry_after"]) == ("busy", 5)
    assert await stored_snapshot(user.pk) == ([], [])
    await client.close()
    await other.close()


async def test_an_account_disabled_after_connecting_is_forbidden_to_send(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)
    await sync_to_async(User.objects.filter(pk=user.pk).update)(is_active=False)

    refused = await client.chat_send()

    assert refused["code"] == "forbidden"
    assert await stored_snapshot(user.pk) == ([], [])
    await client.close()


async def test_input_that_moderation_blocks_gets_moderation_blocked_and_is_never_stored(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)

    blocked = await client.chat_send("I want to kill myself tonight", request_id="r-harm")

    assert blocked["type"] == "moderation.blocked"
    assert blocked["request_id"] == "r-harm"
    assert blocked["categories"] and blocked["message"]
    assert await stored_snapshot(user.pk) == ([], [])
    assert chat_env.tasks == []
    await client.close()


async def test_personal_data_is_redacted_before_it_is_stored_sent_or_used_as_title(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)

    accepted = await client.chat_send("Call me at +1 415 555 0132 about the trip")
    updated = await client.receive()

    content = accepted["user_message"]["content"]
    assert "555 0132" not in content and "about the trip" in content
    assert updated["type"] == "conversation.updated" and "555 0132" not in updated["title"]
    await client.settle()
    stored = await sync_to_async(selectors.message_get)(
        message_id=accepted["user_message"]["id"], owner_id=user.pk
    )
    assert stored["content"] == content
    conversation = await sync_to_async(selectors.conversation_get)(
        conversation_id=accepted["conversation_id"], owner_id=user.pk
    )
    assert conversation["title"] == updated["title"]
    await client.close()


async def test_stop_sets_the_stop_flag_for_the_workers(
    chat_env: Dispatched, make_user: Any
) -> None:
    client = await connect(await sync_to_async(make_user)())
    accepted = await client.chat_send()
    await client.receive()

    await client.send({"type": "generation.stop", "generation_id": accepted["generation_id"]})

    await client.assert_quiet_then_pong()
    assert stop.requested(generation_id=accepted["generation_id"])
    await client.close()


async def test_stop_regenerate_and_subscribe_of_unknown_ids_are_not_found(
    chat_env: Dispatched, make_user: Any
) -> None:
    client = await connect(await sync_to_async(make_user)())

    for frame in (
        {"type": "generation.stop", "generation_id": "nope"},
        {"type": "generation.regenerate", "message_id": "nope"},
        {"type": "generation.subscribe", "generation_id": "nope", "after_seq": 0},
    ):
        await client.send(frame)
        assert (await client.receive())["code"] == "not_found"
    await client.close()


async def test_regenerate_adds_a_sibling_answer_and_is_idempotent_per_request_id(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)
    first = await client.chat_send()
    await client.receive()
    frame = {
        "type": "generation.regenerate",
        "message_id": first["assistant_message_id"],
        "request_id": "regen-1",
    }

    await client.send(frame)
    sibling = await client.receive()
    await client.send(frame)
    again = await client.receive()

    assert sibling["type"] == "chat.accepted"
    assert sibling["user_message"]["id"] == first["user_message"]["id"]
    assert sibling["assistant_message_id"] != first["assistant_message_id"]
    assert again == sibling
    assert chat_env.generation_ids == [first["generation_id"], sibling["generation_id"]]
    await client.settle()
    _, messages = await stored_snapshot(user.pk)
    answers = {m["_id"] for m in messages if m["parent_id"] == first["user_message"]["id"]}
    assert answers == {first["assistant_message_id"], sibling["assistant_message_id"]}
    assert len(messages) == 3  # the question and its two answers: the repeat stored nothing
    await client.close()


async def test_regenerating_a_user_message_is_not_found(
    chat_env: Dispatched, make_user: Any
) -> None:
    client = await connect(await sync_to_async(make_user)())
    first = await client.chat_send()
    await client.receive()

    await client.send({"type": "generation.regenerate", "message_id": first["user_message"]["id"]})

    assert (await client.receive())["code"] == "not_found"
    await client.close()


def delta(generation_id: str, seq: int, text: str) -> dict[str, Any]:
    return {"type": "generation.delta", "generation_id": generation_id, "seq": seq, "text": text}


async def test_deltas_are_relayed_once_each_in_seq_order(
    chat_env: Dispatched, make_user: Any
) -> None:
    client = await connect(await sync_to_async(make_user)())
    accepted = await client.chat_send()
    await client.receive()
    generation_id = accepted["generation_id"]

    for seq, text in ((1, "Hel"), (2, "lo"), (2, "lo"), (1, "Hel"), (3, "!")):
        await publish(generation_id, delta(generation_id, seq, text))

    frames = [await client.receive() for _ in range(3)]
    assert [(f["seq"], f["text"]) for f in frames] == [(1, "Hel"), (2, "lo"), (3, "!")]
    await client.assert_quiet_then_pong()
    await client.close()


async def test_subscribing_to_a_queued_generation_tells_its_position(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    first = await connect(user)
    accepted = await first.chat_send()
    await first.close()
    second = await connect(user)

    await second.send(
        {"type": "generation.subscribe", "generation_id": accepted["generation_id"], "after_seq": 0}
    )

    queued = await second.receive_about(accepted["generation_id"])
    assert queued["type"] == "generation.queued" and queued["position"] >= 1
    # Then it is followed: live deltas after the subscription arrive.
    await publish(accepted["generation_id"], delta(accepted["generation_id"], 1, "Hi"))
    assert (await second.receive_about(accepted["generation_id"]))["text"] == "Hi"
    await second.close()


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2, 3]", "frame"),
        ('{"type": "nope"}', "type"),
        ('{"type": "chat.send"}', "request_id"),
        ('{"type": "ping", "x": ' + "9" * 5000 + "}", "not valid JSON"),
        ('{"type": "chat.send", "request_id": "r", "content": "\\ud800"}', "Unicode"),
        ("[" * 30_000 + "]" * 30_000, "not valid JSON"),
    ],
)
async def test_bad_frames_get_bad_request_and_the_connection_stays_open(
    chat_env: Dispatched, make_user: Any, raw: str, why: str
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)

    await client.send_raw(text=raw)
    error = await client.receive()
    await client.send({"type": "ping"})

    assert error["code"] == "bad_request" and why in error["message"]
    assert await client.receive() == {"type": "pong"}
    assert await stored_snapshot(user.pk) == ([], [])
    await client.close()


async def test_binary_frames_are_refused_with_bad_request(
    chat_env: Dispatched, make_user: Any
) -> None:
    client = await connect(await sync_to_async(make_user)())

    await client.send_raw(data=b'{"type": "ping"}')

    assert (await client.receive())["code"] == "bad_request"
    await client.close()


async def test_a_frame_over_the_size_limit_closes_the_connection_with_1009(
    chat_env: Dispatched, make_user: Any, settings: Settings
) -> None:
    settings.CHAT_MAX_FRAME_BYTES = 2048
    client = await connect(await sync_to_async(make_user)())

    await client.send({"type": "ping", "padding": "é" * 1100})  # 2,200+ bytes, 1,100 chars

    assert await client.communicator.receive_output(5) == {"type": "websocket.close", "code": 1009}


async def test_the_connection_past_the_per_user_limit_is_told_why_and_closed_with_4429(
    chat_env: Dispatched, make_user: Any, settings: Settings
) -> None:
    settings.CHAT_MAX_CONNECTIONS_PER_USER = 2
    user = await sync_to_async(make_user)()
    open_clients = [await connect(user), await connect(user)]

    refused = await connect(user)

    error = await refused.receive()
    assert (error["code"], "2 open connections" in error["message"]) == ("rate_limited", True)
    assert await refused.communicator.receive_output(5) == {
        "type": "websocket.close",
        "code": 4429,
    }
    await open_clients[0].close()
    replacement = await connect(user)
    await replacement.send({"type": "ping"})
    assert await replacement.receive() == {"type": "pong"}
    for client in (open_clients[1], replacement):
        await client.close()


async def test_closing_a_connection_releases_its_place_in_redis(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)
    key = limits.key("connections", user.pk)
    connections = redis.Redis.from_url(django_settings.REDIS_URL)
    assert connections.zcard(key) == 1

    await client.close()

    assert connections.zcard(key) == 0
    connections.close()


async def test_a_resumed_stream_gets_what_it_missed_from_the_delta_log_then_live_deltas(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    first = await connect(user)
    accepted = await first.chat_send()
    await first.close()
    generation_id = accepted["generation_id"]
    # The worker: a checkpoint one second old (seq 1), three deltas recorded and published.
    await sync_to_async(lifecycle.checkpoint)(
        generation_id=generation_id, owner_id=user.pk, text="Hel", seq=1
    )
    for seq, text in ((1, "Hel"), (2, "lo"), (3, " wor")):
        await sync_to_async(deltas.record)(generation_id=generation_id, seq=seq, text=text)
    resumed = await connect(user)

    await resumed.send(
        {"type": "generation.subscribe", "generation_id": generation_id, "after_seq": 1}
    )
    missed = await resumed.receive_about(generation_id)
    for seq, text in ((3, " wor"), (4, "ld")):
        await publish(generation_id, delta(generation_id, seq, text))
    live = await resumed.receive_about(generation_id)

    assert (missed["seq"], missed["text"]) == (3, "lo wor")
    assert (live["seq"], live["text"]) == (4, "ld")  # seq 3 arrived live too, and was dropped
    await resumed.assert_quiet_then_pong()
    redis.Redis.from_url(django_settings.REDIS_URL).delete(names.delta_log_key(generation_id))
    await resumed.close()


async def test_a_progress_ahead_of_the_relayed_seq_brings_the_missed_deltas_from_the_log_first(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)
    accepted = await client.chat_send()
    generation_id = accepted["generation_id"]
    for seq, text in ((1, "Once"), (2, " upon"), (3, " a time")):
        await sync_to_async(deltas.record)(generation_id=generation_id, seq=seq, text=text)
    await publish(generation_id, delta(generation_id, 1, "Once"))
    assert (await client.receive_about(generation_id))["seq"] == 1

    # Deltas 2 and 3 never reached this connection; the worker's heartbeat says seq 3.
    await publish(
        generation_id, {"type": "generation.progress", "generation_id": generation_id, "seq": 3}
    )
    frames = [await client.receive_about(generation_id) for _ in range(3)]
    await publish(generation_id, delta(generation_id, 3, " a time"))  # late: a duplicate

    assert [(f["type"], f.get("seq"), f.get("text")) for f in frames] == [
        ("generation.delta", 2, " upon"),
        ("generation.delta", 3, " a time"),
        ("generation.progress", 3, None),
    ]
    await client.assert_quiet_then_pong()
    redis.Redis.from_url(django_settings.REDIS_URL).delete(names.delta_log_key(generation_id))
    await client.close()


async def test_a_progress_at_the_relayed_seq_is_passed_on_alone(
    chat_env: Dispatched, make_user: Any
) -> None:
    user = await sync_to_async(make_user)()
    client = await connect(user)
    accepted = await client.chat_send()
    generation_id = accepted["generation_id"]

    await publish(
        generation_id, {"type": "generation.progress", "generation_id": generation_id, "seq": 0}
    )

    frame = await client.receive_about(generation_id)
    assert frame == {"type": "generation.progress", "generation_id": generation_id, "seq": 0}
    await client.assert_quiet_then_pong()
    await client.close()
