"""The typed wire format: what clients may send, and what the server may say."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from chat.protocol import (
    ChatAccepted,
    ChatSend,
    GenerationDelta,
    GenerationStop,
    Ping,
    UserMessageInfo,
    json_schema,
    parse_client_message,
    server_message_adapter,
    validation_summary,
)


def test_a_chat_send_frame_parses_into_its_model() -> None:
    message = parse_client_message(
        {
            "type": "chat.send",
            "request_id": "r1",
            "conversation_id": None,
            "content": "hi",
            "options": {"temperature": 0.5, "max_tokens": 64},
        }
    )
    assert isinstance(message, ChatSend)
    assert message.options is not None and message.options.max_tokens == 64


def test_the_type_field_selects_the_model() -> None:
    assert isinstance(parse_client_message({"type": "ping"}), Ping)
    assert isinstance(
        parse_client_message({"type": "generation.stop", "generation_id": "g"}), GenerationStop
    )


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "chat.unknown"},
        {"content": "no type"},
        {"type": "chat.send", "request_id": "r", "content": 5},
        {"type": "chat.send", "request_id": "r"},
        {"type": "chat.send", "request_id": "r", "content": "x", "surprise": 1},
        {"type": "chat.send", "request_id": "r", "content": "x", "options": {"temperature": "hot"}},
        {"type": "generation.subscribe", "generation_id": "g", "after_seq": -1},
        {"type": "generation.subscribe", "generation_id": "g", "after_seq": 10**30},
        {"type": "generation.stop", "generation_id": "g" * 65},
        ["not", "an", "object"],
    ],
)
def test_bad_frames_are_refused_with_a_readable_reason(frame: object) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_client_message(frame)
    summary = validation_summary(caught.value)
    assert summary and len(summary) < 500


def test_server_messages_serialise_to_the_documented_shape() -> None:
    accepted = ChatAccepted(
        request_id="r1",
        conversation_id="c1",
        generation_id="g1",
        assistant_message_id="a1",
        user_message=UserMessageInfo(
            id="u1", parent_id=None, content="hi", created_at=datetime.now(UTC)
        ),
    )
    data = accepted.model_dump(mode="json")
    assert data["type"] == "chat.accepted"
    assert set(data["user_message"]) == {"id", "parent_id", "content", "created_at"}
    assert server_message_adapter.validate_python(data) == accepted


def test_server_messages_are_validated_strictly() -> None:
    with pytest.raises(ValidationError):
        server_message_adapter.validate_python(
            {"type": "generation.delta", "generation_id": "g", "seq": 0, "text": "x"}
        )
    assert GenerationDelta(generation_id="g", seq=1, text="x").type == "generation.delta"


def test_the_json_schema_covers_every_message_type() -> None:
    schema = json_schema()
    text = str(schema)
    for message_type in [
        "chat.send",
        "generation.stop",
        "generation.regenerate",
        "generation.subscribe",
        "ping",
        "chat.accepted",
        "generation.queued",
        "generation.delta",
        "generation.done",
        "generation.error",
        "moderation.blocked",
        "conversation.updated",
        "error",
        "pong",
    ]:
        assert f"'{message_type}'" in text, message_type
