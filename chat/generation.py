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

from chat import selectors, services
from chat.catalog import ModelInfo, model_info_get
from chat.errors import ChatError
from chat.protocol import ChatAccepted, ChatSend, UserMessageInfo
from config.celery import app as celery_app

GENERATE_TASK = "inference.generate"
TITLE_CHARS = 60


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
        celery_app.send_task(
            GENERATE_TASK,
            kwargs={"generation_id": self.generation_id, "owner_id": self.owner_id},
            queue=self.queue,
            priority=self.priority,
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
        return _accepted(request_id=message.request_id, user_message=existing, assistant=answer), None

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
    return _accepted(request_id=message.request_id, user_message=user_message, assistant=assistant), dispatch
