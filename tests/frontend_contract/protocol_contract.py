"""Compare the browser app's websocket types with the server's protocol.

The server's wire format is defined once, in `chat/protocol.py`; `chat.protocol.json_schema()`
is its JSON Schema. The browser app declares the same messages by hand in
`frontend/src/protocol/types.ts` (hand-written on purpose: it names the error message
`ServerError`, reads `error.code` as any string so that a new code is not dropped, and so on).
`frontend/scripts/protocol-shapes.mjs` reads that file with the TypeScript compiler and prints
every message's resolved shape; `compare()` checks it against the schema:

* the same message `type`s in each direction, no more and no fewer;
* for each message (and each nested object, structurally): exactly the schema's properties;
* optionality by direction: a field the server may leave out (not in the schema's `required`)
  must be optional (`?`) in a server→client type; a field the server requires must not be
  optional in a client→server type;
* types by direction: TypeScript must accept every value the server may send (a literal union
  may be widened to `string`, nothing else), and may send only values the server accepts
  (fewer is fine: `number` for an optional `number | null`). `any`/`unknown` are refused.

Constraints the schema also carries (lengths, ranges) are out of scope: TypeScript has no types
for them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
TYPES_TS = FRONTEND / "src" / "protocol" / "types.ts"
SHAPES_SCRIPT = FRONTEND / "scripts" / "protocol-shapes.mjs"

# (schema section, TypeScript union, direction): "read" when the browser reads what the server
# writes, "write" when the browser writes what the server reads.
Direction = Literal["read", "write"]
SECTIONS: tuple[tuple[str, str, Direction], ...] = (
    ("client_to_server", "ClientMessage", "write"),
    ("server_to_client", "ServerMessage", "read"),
)

Alt = dict[str, Any]


class ContractError(Exception):
    """The check itself cannot run (no Node, no TypeScript, a schema it does not understand)."""


def read_ts_shapes(types_ts: Path = TYPES_TS) -> dict[str, Any]:
    """The message shapes declared in `types_ts`, as the TypeScript compiler resolves them."""
    node = shutil.which("node")
    if node is None:
        raise ContractError("Node.js is not on PATH; it is needed to read the TypeScript types.")
    if not (FRONTEND / "node_modules" / "typescript").is_dir():
        raise ContractError(
            "frontend/node_modules has no TypeScript: run `cd frontend && npm ci` (`make setup`)."
        )
    done = subprocess.run(
        [node, str(SHAPES_SCRIPT), str(types_ts)],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise ContractError(f"{SHAPES_SCRIPT.name} failed:\n{done.stderr or done.stdout}")
    shapes: dict[str, Any] = json.loads(done.stdout)
    return shapes


# --- The schema as lists of alternatives ----------------------------------------------------


def schema_alternatives(node: dict[str, Any], defs: dict[str, Any], where: str) -> list[Alt]:
    """One JSON Schema node as a flat list of alternatives, in the shape the Node script uses."""
    if "$ref" in node:
        prefix = "#/$defs/"
        ref = node["$ref"]
        if not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
            raise ContractError(f"{where}: unknown $ref {ref!r}")
        return schema_alternatives(defs[ref[len(prefix) :]], defs, where)
    for key in ("anyOf", "oneOf"):
        if key in node:
            return [alt for sub in node[key] for alt in schema_alternatives(sub, defs, where)]
    if "allOf" in node:
        if len(node["allOf"]) != 1:
            raise ContractError(f"{where}: allOf with several schemas is not supported")
        return schema_alternatives(node["allOf"][0], defs, where)
    if "const" in node:
        return [{"kind": "literal", "value": node["const"]}]
    if "enum" in node:
        return [{"kind": "literal", "value": value} for value in node["enum"]]
    types = node.get("type")
    if types is None:
        raise ContractError(
            f"{where}: the schema {json.dumps(node)} allows any value; give the field a type in "
            "chat/protocol.py (or teach tests/frontend_contract/protocol_contract.py this form)"
        )
    alts: list[Alt] = []
    for kind in [types] if isinstance(types, str) else types:
        if kind in ("string", "boolean", "null"):
            alts.append({"kind": kind})
        elif kind in ("integer", "number"):
            alts.append({"kind": "number"})
        elif kind == "array":
            items = node.get("items")
            if not isinstance(items, dict):
                raise ContractError(f"{where}: an array without one `items` schema")
            alts.append({"kind": "array", "items": schema_alternatives(items, defs, where)})
        elif kind == "object":
            alts.append({"kind": "object", "name": node.get("title", "object"), "schema": node})
        else:
            raise ContractError(f"{where}: unknown JSON Schema type {kind!r}")
    return alts


# --- Comparison --------------------------------------------------------------------------------


def _literal_key(value: Any) -> tuple[str, Any]:
    # True == 1 in Python; a literal's type is part of its identity.
    return (type(value).__name__, value)


def _covers(wide: Alt, narrow: Alt) -> bool:
    """Whether every value of `narrow` is a value of `wide` (objects and arrays: by kind only;
    their insides are compared separately)."""
    if wide["kind"] == "literal":
        return narrow["kind"] == "literal" and _literal_key(wide["value"]) == _literal_key(
            narrow["value"]
        )
    if narrow["kind"] == "literal":
        value = narrow["value"]
        return (
            (wide["kind"] == "string" and isinstance(value, str))
            or (wide["kind"] == "boolean" and isinstance(value, bool))
            or (
                wide["kind"] == "number"
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            )
        )
    return bool(wide["kind"] == narrow["kind"])


def _show(alt: Alt) -> str:
    if alt["kind"] == "literal":
        return json.dumps(alt["value"])
    if alt["kind"] == "array":
        return f"({' | '.join(_show(a) for a in alt['items'])})[]"
    if alt["kind"] == "object":
        return str(alt.get("name", "object"))
    if alt["kind"] == "unsupported":
        return str(alt.get("text", "?"))
    return str(alt["kind"])


def _show_all(alts: list[Alt]) -> str:
    return " | ".join(_show(a) for a in alts) or "never"


class _Comparison:
    def __init__(self, defs: dict[str, Any], direction: Direction) -> None:
        self.defs = defs
        self.direction = direction
        self.problems: list[str] = []

    def types(self, where: str, schema: list[Alt], ts: list[Alt]) -> None:
        for alt in ts:
            if alt["kind"] == "undefined":
                self.problems.append(
                    f"{where}: `undefined` in a required field's type; mark a field that may be "
                    f"absent optional (`?`) instead (schema: {_show_all(schema)})"
                )
                return
            if alt["kind"] == "unsupported":
                self.problems.append(
                    f"{where}: the TypeScript type `{_show(alt)}` says nothing this check can "
                    f"compare; write the schema's type ({_show_all(schema)})"
                )
                return
        if self.direction == "read":
            producer, consumer = schema, ts
            for alt in ts:
                if not any(_covers(alt, s) for s in schema):
                    self.problems.append(
                        f"{where}: TypeScript expects `{_show(alt)}`, which the server never "
                        f"sends (the schema says {_show_all(schema)})"
                    )
        else:
            producer, consumer = ts, schema
        for alt in producer:
            if not any(_covers(c, alt) for c in consumer):
                if self.direction == "read":
                    message = "the server may send it but the TypeScript type does not allow it"
                else:
                    message = "the TypeScript type allows it but the server refuses it"
                self.problems.append(
                    f"{where}: `{_show(alt)}`: {message} "
                    f"(schema: {_show_all(schema)}; TypeScript: {_show_all(ts)})"
                )
        self._insides(where, schema, ts)

    def _insides(self, where: str, schema: list[Alt], ts: list[Alt]) -> None:
        for kind in ("array", "object"):
            s_alts = [a for a in schema if a["kind"] == kind]
            t_alts = [a for a in ts if a["kind"] == kind]
            if not s_alts or not t_alts:
                continue  # a missing kind is reported by types()
            if len(s_alts) > 1 or len(t_alts) > 1:
                self.problems.append(
                    f"{where}: a union of several {kind} types is not supported by this check"
                )
                continue
            if kind == "array":
                self.types(f"{where}[]", s_alts[0]["items"], t_alts[0]["items"])
            else:
                self.object(where, s_alts[0]["schema"], t_alts[0], required_extra=())

    def object(
        self, where: str, schema: dict[str, Any], ts: Alt, required_extra: tuple[str, ...]
    ) -> None:
        s_props: dict[str, Any] = schema.get("properties", {})
        t_props: dict[str, Any] = ts["properties"]
        required = set(schema.get("required", [])) | set(required_extra)
        ts_name = ts.get("name", "object")
        for name in sorted(s_props.keys() - t_props.keys()):
            self.problems.append(
                f"{where}: field `{name}` is in the server's schema but missing from the "
                f"TypeScript type `{ts_name}`"
            )
        for name in sorted(t_props.keys() - s_props.keys()):
            self.problems.append(
                f"{where}: field `{name}` of the TypeScript type `{ts_name}` is not in the "
                "server's schema"
            )
        for name in sorted(s_props.keys() & t_props.keys()):
            field = f"{where}.{name}"
            optional = bool(t_props[name]["optional"])
            if self.direction == "read" and name not in required and not optional:
                self.problems.append(
                    f"{field}: the server may leave it out (it has a default), so the "
                    f"TypeScript type must mark it optional (`{name}?:`) and handle its absence"
                )
            if self.direction == "write" and name in required and optional:
                self.problems.append(
                    f"{field}: the server requires it, so the TypeScript type must not mark "
                    "it optional"
                )
            self.types(
                field, schema_alternatives(s_props[name], self.defs, field), t_props[name]["type"]
            )


def compare(schema: dict[str, Any], shapes: dict[str, Any]) -> list[str]:
    """Every disagreement between the protocol's JSON Schema and the TypeScript shapes."""
    problems: list[str] = []
    for section, union, direction in SECTIONS:
        part = schema[section]
        defs: dict[str, Any] = part.get("$defs", {})
        discriminator = part["discriminator"]["propertyName"]
        by_type: dict[str, dict[str, Any]] = {}
        for alt in schema_alternatives(part, defs, section):
            if alt["kind"] != "object":
                raise ContractError(f"{section}: a message that is not an object: {alt}")
            literal = alt["schema"]["properties"][discriminator].get("const")
            if not isinstance(literal, str):
                raise ContractError(f"{section}: {alt['name']} has no constant `{discriminator}`")
            by_type[literal] = alt["schema"]
        ts_by_type: dict[str, Alt] = {}
        for alt in shapes[union]:
            tag = alt.get("properties", {}).get(discriminator, {}).get("type", [])
            if alt["kind"] != "object" or len(tag) != 1 or tag[0]["kind"] != "literal":
                problems.append(
                    f"{union}: member `{_show(alt)}` has no single literal `{discriminator}`"
                )
                continue
            ts_by_type[tag[0]["value"]] = alt
        arrow = "client→server" if direction == "write" else "server→client"
        for missing in sorted(by_type.keys() - ts_by_type.keys()):
            problems.append(
                f"{arrow} message `{missing}` ({by_type[missing].get('title')}) is in the "
                f"server's schema but not in the TypeScript union `{union}`"
            )
        for extra in sorted(ts_by_type.keys() - by_type.keys()):
            problems.append(
                f"TypeScript `{union}` has a message `{extra}` ({_show(ts_by_type[extra])}) "
                f"that the server's schema does not have"
            )
        comparison = _Comparison(defs, direction)
        for tag in sorted(by_type.keys() & ts_by_type.keys()):
            ts_alt = ts_by_type[tag]
            comparison.object(
                f"{arrow} `{tag}` ({_show(ts_alt)})",
                by_type[tag],
                ts_alt,
                # The discriminator is always on the wire, even where it has a default.
                required_extra=(discriminator,),
            )
        problems.extend(comparison.problems)
    return problems


def report(problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return (
        "frontend/src/protocol/types.ts does not match the server's protocol (chat/protocol.py):\n"
        f"{lines}\n"
        "Update types.ts (and the field checks in frontend/src/protocol/framing.ts, and the code "
        "that handles the message) to match, then rerun `.venv/bin/pytest tests/frontend_contract`."
    )
