"""Hypothesis strategies for hostile websocket frames, shared by the in-process and the live
fuzz tests: random JSON, valid messages with one field broken, wrong types, huge numbers,
deep nesting, lone surrogates, non-JSON text and binary frames."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st
from pydantic import ValidationError

from chat.protocol import ChatSend, parse_client_message

MESSAGE_TYPES = [
    "chat.send",
    "generation.stop",
    "generation.regenerate",
    "generation.subscribe",
    "ping",
]

TEMPLATES: list[dict[str, Any]] = [
    {
        "type": "chat.send",
        "request_id": "r",
        "conversation_id": None,
        "content": "hi",
        "options": {"temperature": 0.5, "max_tokens": 8, "system_prompt": "s"},
    },
    {"type": "generation.stop", "generation_id": "g"},
    {"type": "generation.regenerate", "message_id": "m", "request_id": "r"},
    {"type": "generation.subscribe", "generation_id": "g", "after_seq": 0},
    {"type": "ping"},
]

huge_numbers = st.sampled_from(
    [2**53 + 1, -(2**63), 10**300, 10**4000, 1e308, float("inf"), float("-inf"), float("nan")]
)
lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF).map(lambda c: c * 2)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_numbers,
    st.floats(),
    st.text(max_size=40),
    lone_surrogates,
    st.sampled_from(MESSAGE_TYPES),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def broken_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A valid message with one field replaced, removed, or one unknown field added."""
    frame = json.loads(json.dumps(draw(st.sampled_from(TEMPLATES))))
    action = draw(st.sampled_from(["replace", "remove", "add", "nested"]))
    keys = sorted(frame)
    key = draw(st.sampled_from(keys))
    if action == "replace":
        frame[key] = draw(json_values)
    elif action == "remove":
        del frame[key]
    elif action == "add":
        frame[draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in frame))] = draw(
            json_values
        )
    elif "options" in frame:
        frame["options"][draw(st.sampled_from(["temperature", "max_tokens", "system_prompt"]))] = (
            draw(json_values)
        )
    else:
        frame[key] = draw(json_values)
    return frame


@st.composite
def deep_nesting(draw: st.DrawFn) -> str:
    depth = draw(st.integers(min_value=50, max_value=20_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    return '{"type": "ping", "x": ' + opener * depth + "1" + closer * depth + "}"


def _dumps(value: Any) -> str:
    # allow_nan: Infinity and NaN are what a sloppy client library sends.
    return json.dumps(value, ensure_ascii=False, allow_nan=True)


text_frames = st.one_of(
    json_values.map(_dumps),
    broken_messages().map(_dumps),
    broken_messages().map(lambda f: json.dumps(f, ensure_ascii=True)),  # \\ud800 escapes
    deep_nesting(),
    st.text(max_size=200),
    st.sampled_from(["", "{", "null", "[]", '{"type": null}', '"ping"', "1e999999", "-0"]),
)
binary_frames = st.binary(max_size=200)
frames = st.one_of(
    text_frames.map(lambda text: ("text", text)), binary_frames.map(lambda b: ("bytes", b))
)


def creates_something(kind: str, payload: Any) -> bool:
    """True for a valid chat.send: that one stores a message by design."""
    if kind != "text":
        return False
    try:
        message = parse_client_message(json.loads(payload))
    except (ValueError, RecursionError, ValidationError):
        return False
    return isinstance(message, ChatSend)
