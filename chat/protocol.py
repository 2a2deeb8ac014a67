"""The websocket wire format, version 1 (`docs/protocol.md` is the guide for clients).

This module is the only place the wire format is defined. Client messages refuse unknown
fields; server messages are built from these models so that every frame we send is valid by
construction, and tests validate what the server sends against them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 1
SUBPROTOCOL = "chat.v1"

# Identifiers are opaque strings for clients; bounding their size keeps hostile frames cheap.
Id = Annotated[str, Field(min_length=1, max_length=64)]
RequestId = Annotated[str, Field(min_length=1, max_length=128)]
Seq = Annotated[int, Field(ge=0, le=2**53)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- Client → server -------------------------------------------------------------------------


class SendOptions(_Message):
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    system_prompt: Annotated[str, Field(max_length=32_000)] | None = None


class ChatSend(_Message):
    type: Literal["chat.send"]
    request_id: RequestId
    conversation_id: Id | None = None
    parent_id: Id | None = None
    content: str
    model: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    options: SendOptions | None = None


class GenerationStop(_Message):
    type: Literal["generation.stop"]
    generation_id: Id


class GenerationRegenerate(_Message):
    type: Literal["generation.regenerate"]
    message_id: Id
    request_id: RequestId | None = None
    # None: the conversation's model; "auto": the router's choice (chat/model_router.py).
    model: Annotated[str, Field(min_length=1, max_length=128)] | None = None


class GenerationSubscribe(_Message):
    type: Literal["generation.subscribe"]
    generation_id: Id
    after_seq: Seq = 0


class Ping(_Message):
    type: Literal["ping"]


ClientMessage = Annotated[
    ChatSend | GenerationStop | GenerationRegenerate | GenerationSubscribe | Ping,
    Field(discriminator="type"),
]
client_message_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)

# --- Server → client -------------------------------------------------------------------------


class UserMessageInfo(_Message):
    id: Id
    parent_id: Id | None
    content: str
    created_at: datetime


class ChatAccepted(_Message):
    type: Literal["chat.accepted"] = "chat.accepted"
    request_id: RequestId
    conversation_id: Id
    user_message: UserMessageInfo
    generation_id: Id
    assistant_message_id: Id


class GenerationQueued(_Message):
    type: Literal["generation.queued"] = "generation.queued"
    generation_id: Id
    position: Annotated[int, Field(ge=0)]


class GenerationDelta(_Message):
    type: Literal["generation.delta"] = "generation.delta"
    generation_id: Id
    seq: Annotated[int, Field(ge=1)]
    text: str


class GenerationProgress(_Message):
    """A running generation's heartbeat: sent whenever it has been quiet for a couple of
    seconds (a long prefill, a slow sentence). `seq` is the last delta published; a client
    whose last seq is lower missed deltas, and one that hears nothing at all for several
    heartbeats has lost its stream: either re-subscribes with `after_seq`."""

    type: Literal["generation.progress"] = "generation.progress"
    generation_id: Id
    seq: Seq


class Usage(_Message):
    prompt_tokens: Annotated[int, Field(ge=0)]
    completion_tokens: Annotated[int, Field(ge=0)]


FinishReason = Literal["stop", "length", "stopped", "moderated"]


class GenerationDone(_Message):
    type: Literal["generation.done"] = "generation.done"
    generation_id: Id
    finish_reason: FinishReason
    text: str
    usage: Usage
    # The model that wrote the answer (the router's choice for `model: "auto"`).
    model: str | None = None
    # True when the response cache answered (the engine did no work; usage is what was billed).
    cached: bool = False
    # The model version that wrote the answer (its label); null for a model without versions.
    # Added after the first clients: optional, and clients ignore what they do not know.
    model_version: str | None = None


GenerationErrorCode = Literal["interrupted", "engine_error", "timeout"]


class GenerationError(_Message):
    type: Literal["generation.error"] = "generation.error"
    generation_id: Id
    code: GenerationErrorCode
    message: str
    text: str


class ModerationBlocked(_Message):
    type: Literal["moderation.blocked"] = "moderation.blocked"
    request_id: RequestId | None = None
    generation_id: Id | None = None
    categories: list[str]
    message: str


class ConversationUpdated(_Message):
    """A conversation changed: created, titled, renamed, archived or unarchived, or deleted.
    Sent to every connection of its owner; carries the conversation's state after the change."""

    type: Literal["conversation.updated"] = "conversation.updated"
    conversation_id: Id
    title: str
    archived: bool = False
    deleted: bool = False


ErrorCode = Literal[
    "bad_request", "not_found", "rate_limited", "quota_exceeded", "too_large", "busy", "forbidden"
]


class Error(_Message):
    type: Literal["error"] = "error"
    request_id: str | None = None
    code: ErrorCode
    message: str
    retry_after: Annotated[int, Field(ge=0)] | None = None


class Pong(_Message):
    type: Literal["pong"] = "pong"


ServerMessage = Annotated[
    ChatAccepted
    | GenerationQueued
    | GenerationDelta
    | GenerationProgress
    | GenerationDone
    | GenerationError
    | ModerationBlocked
    | ConversationUpdated
    | Error
    | Pong,
    Field(discriminator="type"),
]
server_message_adapter: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)


def parse_client_message(data: Any) -> ClientMessage:
    """Validate one decoded client frame. Raises `pydantic.ValidationError`."""
    return client_message_adapter.validate_python(data)


def validation_summary(error: ValidationError) -> str:
    """A short, client-safe description of why a frame was refused."""
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "frame"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def json_schema() -> dict[str, Any]:
    """JSON Schema of every message in both directions, for client generators."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Chat websocket protocol v{PROTOCOL_VERSION}",
        "client_to_server": client_message_adapter.json_schema(),
        "server_to_client": server_message_adapter.json_schema(mode="serialization"),
    }
