"""A generation's record: its states, its stored document, how it ended, and the one builder
of its closing message (`generation.done` or `generation.error`), used by the worker when it
ends a generation and by a resuming client's replay alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict, cast

from chat.protocol import FinishReason, GenerationDone, GenerationError, ModerationBlocked, Usage

QUEUED, STREAMING = "queued", "streaming"
LIVE_STATES = (QUEUED, STREAMING)
# A final state and what the client is told for it: a finish_reason (when none was stored) ...
FINISH_REASON_BY_STATE: dict[str, FinishReason] = {
    "complete": "stop",
    "stopped": "stopped",
    "moderated": "moderated",
}
# ... or a generation.error code (when none was stored).
ERROR_CODE_BY_STATE = {"failed": "engine_error", "interrupted": "interrupted"}
ERROR_STATES = frozenset(ERROR_CODE_BY_STATE)
FINAL_STATES = frozenset(FINISH_REASON_BY_STATE) | ERROR_STATES
FinalState = Literal["complete", "stopped", "moderated", "failed", "interrupted"]
ErrorCode = Literal["interrupted", "engine_error", "timeout"]
DEFAULT_ERROR_MESSAGE = "The answer could not be completed."
# Where a generation was asked for, which its bill records (`inference.UsageRecord.source`):
# the app's websocket, or the OpenAI-compatible API (`/v1/`, with the key it used). A stored
# generation without a `source` is the websocket's.
SOURCE_WS, SOURCE_API = "ws", "api"
SOURCES = (SOURCE_WS, SOURCE_API)


class UsageCounts(TypedDict):
    prompt_tokens: int
    completion_tokens: int


class GenerationDocument(TypedDict, total=False):
    """An assistant message in the store: the record of one generation."""

    id: str
    conversation_id: str
    owner_id: int
    parent_id: str
    role: Literal["assistant"]
    model: str
    model_version_id: int  # the model version chosen at admission, then the one it ran on
    model_version: str  # that version's label
    queue: str  # the model queue it was enqueued on
    options: dict[str, Any]
    generation_id: str
    state: str  # queued | streaming | a final state
    content: str
    seq: int
    seq_offsets: list[int]  # text length after each delta seq
    usage: UsageCounts | None
    finish_reason: str | None
    error: str  # what the client is told (error states)
    error_code: str  # the generation.error code (error states)
    moderation: dict[str, Any]  # {"categories", "message"} when output moderation cut it
    source: str  # SOURCES; absent: the websocket's
    api_key_id: int  # the `/v1/` key that asked for it (source "api")
    cached: bool  # answered by the response cache (inference.cache); absent: generated
    saved_tokens: int  # a cached answer's tokens the engine did not process
    heartbeat_at: datetime
    worker: str  # the worker process streaming it (its Celery hostname), from its first checkpoint
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class Ending:
    """How one generation ended, with everything the store, the bill and the client need."""

    generation_id: str
    owner_id: int
    state: str  # a final state
    text: str
    seq: int
    finish_reason: str | None = None  # protocol finish_reason (done-like endings)
    error_code: str | None = None  # protocol generation.error code (error states)
    error_message: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seq_offsets: list[int] | None = None
    model_name: str = ""
    model_version_id: int | None = None  # the version that wrote it (None: no versions)
    model_version: str = ""
    conversation_id: str = ""
    time_to_first_token_ms: int | None = None
    duration_ms: int = 0
    categories: list[str] = field(default_factory=list)  # moderated only
    moderation_message: str = ""
    cached: bool = False  # answered by the response cache
    saved_tokens: int = 0  # what the engine did not process for it

    @property
    def usage(self) -> UsageCounts:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}

    @property
    def billed_reason(self) -> str:
        return self.error_code or self.finish_reason or self.state

    @classmethod
    def from_document(
        cls,
        document: GenerationDocument | dict[str, Any],
        *,
        state: str | None = None,
        error_message: str | None = None,
    ) -> Ending:
        """The ending a stored generation holds: its final state, or `state` (an abandoned
        stream that is to be interrupted), with the text and usage of its last write."""
        state = state or document.get("state") or "interrupted"
        usage = document.get("usage") or {}
        created, heartbeat = document.get("created_at"), document.get("heartbeat_at")
        duration = (heartbeat - created).total_seconds() * 1000 if created and heartbeat else 0
        error_code = None
        if state in ERROR_STATES:
            stored_code = document.get("error_code") if state == document.get("state") else None
            error_code = stored_code or ERROR_CODE_BY_STATE[state]
        moderation = document.get("moderation") or {}
        return cls(
            generation_id=document["generation_id"],
            owner_id=document["owner_id"],
            state=state,
            text=document.get("content") or "",
            seq=int(document.get("seq") or 0),
            finish_reason=None if state in ERROR_STATES else document.get("finish_reason"),
            error_code=error_code,
            error_message=error_message or document.get("error"),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            seq_offsets=document.get("seq_offsets"),
            model_name=document.get("model") or "",
            model_version_id=document.get("model_version_id"),
            model_version=document.get("model_version") or "",
            conversation_id=document.get("conversation_id") or "",
            duration_ms=max(0, round(duration)),
            categories=list(moderation.get("categories") or []),
            moderation_message=moderation.get("message") or "",
            cached=bool(document.get("cached")),
            saved_tokens=int(document.get("saved_tokens") or 0),
        )

    def closing_message(self) -> GenerationDone | GenerationError:
        """The generation's closing protocol message: the only place it is built."""
        if self.state in ERROR_STATES:
            return GenerationError(
                generation_id=self.generation_id,
                code=cast(ErrorCode, self.error_code or ERROR_CODE_BY_STATE[self.state]),
                message=self.error_message or DEFAULT_ERROR_MESSAGE,
                text=self.text,
            )
        return GenerationDone(
            generation_id=self.generation_id,
            finish_reason=cast(
                FinishReason,
                self.finish_reason or FINISH_REASON_BY_STATE.get(self.state, "stop"),
            ),
            text=self.text,
            usage=Usage(**self.usage),
            model=self.model_name or None,
            cached=self.cached,
            model_version=self.model_version or None,
        )

    def closing_messages(self) -> list[ModerationBlocked | GenerationDone | GenerationError]:
        """What the followers are told when it ends, in order: why output moderation cut it
        (when it did), then the closing message."""
        closing = self.closing_message()
        if self.state != "moderated":
            return [closing]
        blocked = ModerationBlocked(
            generation_id=self.generation_id,
            categories=self.categories,
            message=self.moderation_message,
        )
        return [blocked, closing]
