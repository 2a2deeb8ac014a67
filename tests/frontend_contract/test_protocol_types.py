"""The browser app's websocket types (frontend/src/protocol/types.ts) match chat/protocol.py.

The first test is the check itself; the others show that it catches each kind of drift, by
changing a copy of the real schema.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chat.protocol import json_schema
from tests.frontend_contract.protocol_contract import compare, read_ts_shapes, report


@pytest.fixture(scope="module")
def shapes() -> dict[str, Any]:
    return read_ts_shapes()


def _server_def(schema: dict[str, Any], name: str) -> dict[str, Any]:
    definition: dict[str, Any] = schema["server_to_client"]["$defs"][name]
    return definition


def _client_def(schema: dict[str, Any], name: str) -> dict[str, Any]:
    definition: dict[str, Any] = schema["client_to_server"]["$defs"][name]
    return definition


def _new_problems(schema: dict[str, Any], shapes: dict[str, Any]) -> list[str]:
    """What changing the schema adds to whatever the real schema already disagrees on."""
    before = set(compare(json_schema(), shapes))
    return [p for p in compare(schema, shapes) if p not in before]


def test_types_ts_matches_the_servers_protocol(shapes: dict[str, Any]) -> None:
    problems = compare(json_schema(), shapes)
    assert not problems, report(problems)


def test_a_field_added_on_the_server_only_fails(shapes: dict[str, Any]) -> None:
    schema = copy.deepcopy(json_schema())
    _server_def(schema, "ConversationUpdated")["properties"]["pinned"] = {
        "default": False,
        "type": "boolean",
    }
    problems = _new_problems(schema, shapes)
    assert len(problems) == 1, problems
    assert "field `pinned` is in the server's schema but missing" in problems[0]
    assert "`conversation.updated`" in problems[0]


def test_a_field_removed_on_the_server_fails(shapes: dict[str, Any]) -> None:
    schema = copy.deepcopy(json_schema())
    del _server_def(schema, "GenerationQueued")["properties"]["position"]
    assert any("`position`" in p and "not in the" in p for p in _new_problems(schema, shapes))


def test_a_nested_field_added_on_the_server_fails(shapes: dict[str, Any]) -> None:
    schema = copy.deepcopy(json_schema())
    _server_def(schema, "Usage")["properties"]["cached_tokens"] = {"type": "integer"}
    _server_def(schema, "Usage")["required"].append("cached_tokens")
    problems = _new_problems(schema, shapes)
    assert any("usage" in p and "`cached_tokens`" in p for p in problems), problems


def test_a_new_server_message_type_fails(shapes: dict[str, Any]) -> None:
    schema = copy.deepcopy(json_schema())
    section = schema["server_to_client"]
    section["$defs"]["Shutdown"] = {
        "properties": {"type": {"const": "server.shutdown", "type": "string"}},
        "title": "Shutdown",
        "type": "object",
    }
    section["oneOf"].append({"$ref": "#/$defs/Shutdown"})
    problems = _new_problems(schema, shapes)
    assert any("`server.shutdown`" in p and "not in the TypeScript union" in p for p in problems)


def test_an_optional_server_field_must_be_optional_in_typescript(
    shapes: dict[str, Any],
) -> None:
    schema = copy.deepcopy(json_schema())
    _server_def(schema, "GenerationDelta")["required"].remove("text")
    problems = _new_problems(schema, shapes)
    assert any("generation.delta" in p and "text?:" in p for p in problems), problems


def test_a_newly_required_client_field_must_be_required_in_typescript(
    shapes: dict[str, Any],
) -> None:
    schema = copy.deepcopy(json_schema())
    _client_def(schema, "ChatSend")["required"].append("model")
    problems = _new_problems(schema, shapes)
    assert any("chat.send" in p and ".model" in p and "requires it" in p for p in problems)


def test_a_changed_field_type_or_literal_fails(shapes: dict[str, Any]) -> None:
    schema = copy.deepcopy(json_schema())
    _server_def(schema, "GenerationDelta")["properties"]["seq"] = {"type": "string"}
    error = _server_def(schema, "GenerationError")["properties"]["code"]
    error["enum"] = [*error["enum"][:-1], "timed_out"]
    problems = "\n".join(_new_problems(schema, shapes))
    assert "generation.delta" in problems and ".seq" in problems
    assert '"timed_out"' in problems  # the server may send it, TypeScript does not know it
    assert '"timeout"' in problems  # TypeScript expects it, the server never sends it
    # The client may send fewer values than the server accepts, but no others.
    schema = copy.deepcopy(json_schema())
    _client_def(schema, "GenerationSubscribe")["properties"]["after_seq"] = {"type": "string"}
    assert any("after_seq" in p and "refuses" in p for p in _new_problems(schema, shapes))


def test_a_field_becoming_nullable_on_the_server_fails(shapes: dict[str, Any]) -> None:
    schema = copy.deepcopy(json_schema())
    title = _server_def(schema, "ConversationUpdated")["properties"]["title"]
    _server_def(schema, "ConversationUpdated")["properties"]["title"] = {
        "anyOf": [title, {"type": "null"}]
    }
    problems = _new_problems(schema, shapes)
    assert any(".title" in p and "`null`" in p for p in problems), problems
