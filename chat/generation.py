"""Starting generations: the one place where a user's message becomes stored work for a worker.

The consumer calls `chat_send_prepare` in a thread. It validates, stores the user message and a
queued assistant message *before* anything is enqueued (nothing the user typed is ever lost),
and returns the `chat.accepted` message together with the `Dispatch` that enqueues the worker
task. The consumer joins the generation's group between the two, so no delta can be published
before somebody listens.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from chat import flags, selectors, services
from chat.catalog import ModelInfo, model_info_get
from chat.errors import ChatError
from chat.protocol import (
    ChatAccepted,
    ChatSend,
    GenerationDelta,
    GenerationDone,
    GenerationError,
    GenerationQueued,
    Usage,
    UserMessageInfo,
)
from config.celery import app as celery_app

GENERATE_TASK = "inference.generate"
TITLE_CHARS = 60
FINAL_STATES = frozenset({"complete", "stopped", "interrupted", "failed", "moderated"})
# Stored final state -> the protocol's finish_reason or generation.error code.
FINISH_REASON_BY_STATE = {"stopped": "stopped", "moderated": "moderated"}
ERROR_CODE_BY_STATE = {"interrupted": "interrupted", "failed": "engine_error"}


def generation_group(generation_id: str) -> str:
    return f"gen.{generation_id}"


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Enqueues one stored generation on its model's queue."""

    generation_id: str
    owner_id: int
    queue: str
    priority: int

    def __call__(self) -> None:
        flags.waiting_add(
            queue=self.queue, generation_id=self.generation_id, priority=self.priority
        )
        celery_app.send_task(
            GENERATE_TASK,
            kwargs={"generation_id": self.generation_id, "owner_id": self.owner_id},
            queue=self.queue,
            # Celery's Redis transport runs priority 0 first; ours is "higher is sooner".
            priority=9 - self.priority,
        )


def _accepted(*, request_id: str, user_message: dict, assistant: dict) -> ChatAccepted:
    return ChatAccepted(
        request_id=request_id,
        conversation_id=user_message["conversation_id"],
        user_message=UserMessageInfo(
            id=user_message["id"],
            parent_id=user_message["parent_id"],
            content=user_message["content"],
            created_at=user_message["created_at"],
        ),
        generation_id=assistant["generation_id"],
        assistant_message_id=assistant["id"],
    )


def _title_from(content: str) -> str:
    line = " ".join(content.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def _resolve_model(name: str | None) -> ModelInfo:
    model = model_info_get(name=name)
    if model is None:
        raise ChatError("not_found", f"No such model: {name}." if name else "No model is enabled.")
    return model


def chat_send_prepare(
    *, owner_id: int, priority: int, message: ChatSend
) -> tuple[ChatAccepted, Dispatch | None]:
    """Store the user's message and a queued answer; return `chat.accepted` and its dispatch.

    A repeated `request_id` returns the original `chat.accepted` and no dispatch.
    """
    existing = selectors.message_by_request(owner_id=owner_id, request_id=message.request_id)
    if existing is not None:
        answer = selectors.message_first_child(message_id=existing["id"], owner_id=owner_id)
        if answer is None:
            raise ChatError("bad_request", "This request_id was used for another message.")
        return _accepted(
            request_id=message.request_id, user_message=existing, assistant=answer
        ), None

    content = message.content
    if not content.strip():
        raise ChatError("bad_request", "content: must not be empty")
    if len(content) > settings.CHAT_MAX_CONTENT_CHARS:
        raise ChatError(
            "too_large", f"content: at most {settings.CHAT_MAX_CONTENT_CHARS} characters"
        )

    if message.conversation_id is None:
        model = _resolve_model(message.model)
        if message.parent_id is not None:
            raise ChatError("bad_request", "parent_id: needs a conversation_id")
        system_prompt = message.options.system_prompt if message.options else None
        conversation = services.conversation_create(
            owner_id=owner_id,
            title=_title_from(content),
            model=model.name,
            system_prompt=system_prompt,
        )
        parent_id = None
    else:
        conversation = selectors.conversation_get(
            conversation_id=message.conversation_id, owner_id=owner_id
        )
        if conversation is None:
            raise ChatError("not_found", "No such conversation.")
        model = _resolve_model(message.model or conversation["model"])
        parent_id = message.parent_id or conversation.get("current_leaf_id")
        if message.parent_id is not None:
            parent = selectors.message_get(message_id=message.parent_id, owner_id=owner_id)
            if parent is None or parent["conversation_id"] != conversation["id"]:
                raise ChatError("not_found", "No such message.")

    user_message = services.message_create_user(
        conversation_id=conversation["id"],
        owner_id=owner_id,
        parent_id=parent_id,
        content=content,
        request_id=message.request_id,
    )
    assistant = services.message_create_assistant(
        conversation_id=conversation["id"],
        owner_id=owner_id,
        parent_id=user_message["id"],
        model=model.name,
    )
    dispatch = Dispatch(
        generation_id=assistant["generation_id"],
        owner_id=owner_id,
        queue=model.queue,
        priority=priority,
    )
    return _accepted(
        request_id=message.request_id, user_message=user_message, assistant=assistant
    ), dispatch


def _generation_for(*, owner_id: int, generation_id: str) -> dict:
    message = selectors.message_by_generation(generation_id=generation_id, owner_id=owner_id)
    if message is None:
        raise ChatError("not_found", "No such generation.")
    return message


def generation_stop(*, owner_id: int, generation_id: str) -> None:
    """Ask whichever worker runs (or will run) this generation to stop it."""
    message = _generation_for(owner_id=owner_id, generation_id=generation_id)
    if message["state"] not in FINAL_STATES:
        flags.generation_stop_request(generation_id=generation_id)


def generation_regenerate_prepare(
    *, owner_id: int, priority: int, message_id: str, request_id: str
) -> tuple[ChatAccepted, Dispatch]:
    """A new answer, as a sibling of `message_id`, to the same user message."""
    answer = selectors.message_get(message_id=message_id, owner_id=owner_id)
    if answer is None or answer["role"] != "assistant" or answer["parent_id"] is None:
        raise ChatError("not_found", "No such assistant message.")
    question = selectors.message_get(message_id=answer["parent_id"], owner_id=owner_id)
    if question is None:
        raise ChatError("not_found", "No such assistant message.")
    conversation = selectors.conversation_get(
        conversation_id=answer["conversation_id"], owner_id=owner_id
    )
    if conversation is None:
        raise ChatError("not_found", "No such assistant message.")
    model = _resolve_model(conversation["model"])
    sibling = services.message_create_assistant(
        conversation_id=conversation["id"],
        owner_id=owner_id,
        parent_id=question["id"],
        model=model.name,
    )
    dispatch = Dispatch(
        generation_id=sibling["generation_id"],
        owner_id=owner_id,
        queue=model.queue,
        priority=priority,
    )
    return _accepted(request_id=request_id, user_message=question, assistant=sibling), dispatch


def generation_replay(*, owner_id: int, generation_id: str, after_seq: int) -> tuple[list, int]:
    """What a resuming client has missed, from the stored checkpoint.

    Returns the protocol messages to send and the seq they bring the client up to. The text
    after `after_seq` comes as one delta: `seq_offsets[i]` is the text length after delta i+1.
    """
    message = _generation_for(owner_id=owner_id, generation_id=generation_id)
    state = message["state"]
    seq = int(message.get("seq") or 0)
    text = message.get("content") or ""
    replay: list = []
    if state == "queued":
        queue = _resolve_queue(message)
        position = (
            flags.waiting_position(queue=queue, generation_id=generation_id) if queue else None
        )
        replay.append(GenerationQueued(generation_id=generation_id, position=position or 0))
        return replay, after_seq
    if seq > after_seq:
        offsets = message.get("seq_offsets") or []
        # Without offsets the split point is unknown: the final message reconciles instead.
        start = (
            0 if after_seq == 0 else offsets[after_seq - 1] if after_seq <= len(offsets) else None
        )
        if start is not None and text[start:]:
            replay.append(GenerationDelta(generation_id=generation_id, seq=seq, text=text[start:]))
    if state in FINAL_STATES:
        replay.append(generation_final_message(message))
    return replay, max(seq, after_seq)


def _resolve_queue(message: dict) -> str | None:
    model = model_info_get(name=message.get("model"))
    return model.queue if model else None


def generation_final_message(message: dict) -> GenerationDone | GenerationError:
    """The closing protocol message for a generation in a final state, from the store."""
    state = message["state"]
    text = message.get("content") or ""
    if state in ERROR_CODE_BY_STATE:
        return GenerationError(
            generation_id=message["generation_id"],
            code=ERROR_CODE_BY_STATE[state],  # type: ignore[arg-type]
            message=message.get("error") or f"The answer was {state}.",
            text=text,
        )
    usage = message.get("usage") or {}
    return GenerationDone(
        generation_id=message["generation_id"],
        finish_reason=message.get("finish_reason") or FINISH_REASON_BY_STATE.get(state, "stop"),
        text=text,
        usage=Usage(
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
        ),
    )
