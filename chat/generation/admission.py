"""Starting generations: the one place where a user's message becomes stored work for a worker.

The consumer calls `chat_send_prepare` in a thread. In order, it: answers a repeated
`request_id` with the original `chat.accepted`; validates the content; checks the account, the
user's rate, quota and concurrent generations, the target conversation and the model's queue;
runs input moderation; and only then stores the user message and a queued assistant message
(nothing the user typed is lost once accepted, and nothing refused is ever stored or queued).
It returns the `chat.accepted` message together with the `Dispatch` that enqueues the worker
task: the consumer joins the generation's group between the two, so no delta can be published
before somebody listens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from pymongo.errors import DuplicateKeyError

from chat import flags, limits, selectors, services
from chat.catalog import ModelInfo, model_info_get
from chat.errors import ChatError
from chat.protocol import (
    ChatAccepted,
    ChatSend,
    ConversationUpdated,
    ModerationBlocked,
    SendOptions,
    UserMessageInfo,
)
from chat.replay import FINAL_STATES, generation_message_get
from config.celery import app as celery_app
from moderation.services import moderate_input

GENERATE_TASK = "inference.generate"
TITLE_CHARS = 60
# Seconds a client refused with `busy` is asked to wait.
BUSY_RETRY_AFTER = 5
# Longest a chat.send holds its request_id's lock (moderation with a guard model included).
REQUEST_LOCK_SECONDS = 30
# How long a regenerate's request_id is remembered for idempotency.
REGENERATE_REQUEST_TTL_SECONDS = 24 * 3600


def generation_group(generation_id: str) -> str:
    return f"gen.{generation_id}"


def user_group(owner_id: int) -> str:
    """Every open connection of one user (conversation.updated reaches all their tabs)."""
    return f"user.{owner_id}"


class InputBlocked(Exception):
    """Moderation refused the input: send `message` (moderation.blocked), store nothing."""

    def __init__(self, message: ModerationBlocked) -> None:
        super().__init__(message.message)
        self.message = message


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
            kwargs={
                "generation_id": self.generation_id,
                "owner_id": self.owner_id,
                "priority": self.priority,
            },
            queue=self.queue,
            # Celery's Redis transport runs priority 0 first; ours is "higher is sooner".
            priority=9 - self.priority,
        )


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the consumer sends and starts for one accepted message."""

    accepted: ChatAccepted
    dispatch: Dispatch | None  # None: a repeated request, already started
    conversation_updated: ConversationUpdated | None = None


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


def message_first_answer(*, message: dict, owner_id: int) -> dict | None:
    """The first assistant message under the user message `message` (the one its chat.send
    started; later ones are regenerations)."""
    answers = [
        reply
        for reply in selectors.message_replies(message_id=message["id"], owner_id=owner_id)
        if reply.get("role") == "assistant"
    ]
    return min(answers, key=lambda reply: reply["created_at"]) if answers else None


def _accepted_again(*, owner_id: int, request_id: str) -> ChatAccepted | None:
    existing = selectors.message_by_request(owner_id=owner_id, request_id=request_id)
    if existing is None:
        return None
    answer = message_first_answer(message=existing, owner_id=owner_id)
    if answer is None:
        raise ChatError("bad_request", "request_id: already used for another message.")
    return _accepted(request_id=request_id, user_message=existing, assistant=answer)


@contextlib.contextmanager
def _request_lock(*, owner_id: int, request_id: str) -> Iterator[None]:
    """Serialise work on one (user, request_id) across processes. A real MongoDB also has a
    unique index on it; the embedded stand-ins do not, and two racing connections must still
    create one message."""
    lock = flags.redis_client().lock(
        limits.key("request", owner_id, request_id),
        timeout=REQUEST_LOCK_SECONDS,
        blocking_timeout=REQUEST_LOCK_SECONDS,
    )
    if not lock.acquire():
        raise ChatError("busy", "This request is still being processed.", retry_after=1)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # expired meanwhile: nothing left to release
            lock.release()


def _account_check(owner_id: int) -> None:
    # Authentication happened at connect; an account disabled since then starts nothing more.
    if not get_user_model().objects.filter(pk=owner_id, is_active=True).exists():
        raise ChatError("forbidden", "This account is disabled.")


def _admission_check(model: ModelInfo) -> None:
    depth = flags.waiting_depth(
        queue=model.queue, stale_after=2 * settings.INFERENCE_TASK_TIME_LIMIT_SECONDS
    )
    if depth >= settings.CHAT_MAX_QUEUE_DEPTH:
        raise ChatError(
            "busy", "The model is busy. Please try again shortly.", retry_after=BUSY_RETRY_AFTER
        )


def _is_running(owner_id: int) -> Any:
    def is_running(generation_id: str) -> bool:
        message = selectors.message_by_generation(generation_id=generation_id, owner_id=owner_id)
        return message is not None and message.get("state") not in FINAL_STATES

    return is_running


def _stored_options(options: SendOptions | None, model: ModelInfo) -> dict[str, Any]:
    """The request's options, clamped to the model's limits (the worker clamps again)."""
    if options is None:
        return {}
    stored = options.model_dump(exclude_none=True)
    if "max_tokens" in stored:
        stored["max_tokens"] = min(stored["max_tokens"], model.max_output_tokens)
    return stored


def _moderated_content(
    content: str, *, owner_id: int, conversation_id: str | None, request_id: str
) -> str:
    decision = moderate_input(
        content, user_id=owner_id, conversation_id=conversation_id, request_id=request_id
    )
    if decision.action == "block":
        raise InputBlocked(
            ModerationBlocked(
                request_id=request_id,
                categories=list(decision.categories),
                message=decision.message or "This message cannot be sent.",
            )
        )
    # "redact" replaces personal data; "flag" and "allow" keep the text as typed.
    return decision.text


def content_check(content: str) -> None:
    """Refuse empty or oversized content: the first check of a chat.send, before any work that
    grows with the content (moderation, embedding, the store)."""
    if not content.strip():
        raise ChatError("bad_request", "content: must not be empty")
    if len(content) > settings.CHAT_MAX_CONTENT_CHARS:
        raise ChatError(
            "too_large", f"content: at most {settings.CHAT_MAX_CONTENT_CHARS} characters"
        )


def _send_target(*, owner_id: int, message: ChatSend) -> tuple[dict | None, ModelInfo, str | None]:
    """The conversation (None: a new one), the model and the parent message id.

    `parent_id` left out: after the current leaf. `parent_id: null` sent explicitly: a new
    root, which is how the conversation's first message is edited."""
    if message.conversation_id is None:
        if message.parent_id is not None:
            raise ChatError("bad_request", "parent_id: needs a conversation_id")
        return None, _resolve_model(message.model), None
    conversation = selectors.conversation_get(
        conversation_id=message.conversation_id, owner_id=owner_id
    )
    if conversation is None:
        raise ChatError("not_found", "No such conversation.")
    if message.parent_id is not None:
        parent = selectors.message_get(message_id=message.parent_id, owner_id=owner_id)
        if parent is None or parent["conversation_id"] != conversation["id"]:
            raise ChatError("not_found", "No such message.")
    model = _resolve_model(message.model or conversation["model"])
    if message.parent_id is None and "parent_id" in message.model_fields_set:
        return conversation, model, None
    return conversation, model, message.parent_id or conversation.get("current_leaf_id")


def chat_send_prepare(
    *, owner_id: int, priority: int, message: ChatSend, generation_id: str | None = None
) -> Prepared:
    """Check, moderate and store the user's message and a queued answer (with `generation_id`
    when given; a repeated `request_id` returns the first answer's).

    Raises `ChatError` (the protocol `error`) or `InputBlocked` (`moderation.blocked`); then
    nothing was stored or queued, so a retry with the same `request_id` starts cleanly.
    """
    request_id = message.request_id
    content_check(message.content)
    again = _accepted_again(owner_id=owner_id, request_id=request_id)
    if again is not None:
        return Prepared(again, None)
    with _request_lock(owner_id=owner_id, request_id=request_id):
        again = _accepted_again(owner_id=owner_id, request_id=request_id)
        if again is not None:
            return Prepared(again, None)
        _account_check(owner_id)
        limits.message_rate_hit(owner_id=owner_id)
        conversation, model, parent_id = _send_target(owner_id=owner_id, message=message)
        _admission_check(model)
        content = _moderated_content(
            message.content,
            owner_id=owner_id,
            conversation_id=conversation["id"] if conversation else None,
            request_id=request_id,
        )
        token = limits.generation_slot_reserve(owner_id=owner_id, is_running=_is_running(owner_id))
        try:
            updated = None
            if conversation is None:
                conversation = services.conversation_create(
                    owner_id=owner_id,
                    title=_title_from(content),
                    model=model.name,
                    system_prompt=message.options.system_prompt if message.options else None,
                )
                updated = ConversationUpdated(
                    conversation_id=conversation["id"], title=conversation["title"]
                )
            user_message = services.message_create_user(
                conversation_id=conversation["id"],
                owner_id=owner_id,
                parent_id=parent_id,
                content=content,
                request_id=request_id,
            )
            assistant = services.message_create_assistant(
                conversation_id=conversation["id"],
                owner_id=owner_id,
                parent_id=user_message["id"],
                model=model.name,
                options=_stored_options(message.options, model),
                generation_id=generation_id,
            )
        except DuplicateKeyError:
            # The unique (owner, request_id) index of a real MongoDB caught a racing twin.
            limits.generation_slot_release(owner_id=owner_id, token_or_generation_id=token)
            again = _accepted_again(owner_id=owner_id, request_id=request_id)
            if again is None:
                raise
            return Prepared(again, None)
        except BaseException:
            limits.generation_slot_release(owner_id=owner_id, token_or_generation_id=token)
            raise
        limits.generation_slot_confirm(
            owner_id=owner_id, token=token, generation_id=assistant["generation_id"]
        )
    dispatch = Dispatch(
        generation_id=assistant["generation_id"],
        owner_id=owner_id,
        queue=model.queue,
        priority=priority,
    )
    accepted = _accepted(request_id=request_id, user_message=user_message, assistant=assistant)
    return Prepared(accepted, dispatch, updated)


def generation_stop(*, owner_id: int, generation_id: str) -> None:
    """Ask whichever worker runs (or will run) this generation to stop it."""
    message = generation_message_get(owner_id=owner_id, generation_id=generation_id)
    if message["state"] not in FINAL_STATES:
        flags.generation_stop_request(generation_id=generation_id)


def _regenerated_again(*, owner_id: int, request_id: str) -> ChatAccepted | None:
    raw = flags.redis_client().get(limits.key("regenerate", owner_id, request_id))
    if raw is None:
        return None
    sibling = selectors.message_by_generation(generation_id=flags.as_text(raw), owner_id=owner_id)
    question = (
        selectors.message_get(message_id=sibling["parent_id"], owner_id=owner_id)
        if sibling
        else None
    )
    if sibling is None or question is None:
        return None
    return _accepted(request_id=request_id, user_message=question, assistant=sibling)


def generation_regenerate_prepare(
    *,
    owner_id: int,
    priority: int,
    message_id: str,
    request_id: str,
    generation_id: str | None = None,
) -> Prepared:
    """A new answer, as a sibling of `message_id`, to the same user message. Idempotent per
    `request_id` for a day, like chat.send."""
    again = _regenerated_again(owner_id=owner_id, request_id=request_id)
    if again is not None:
        return Prepared(again, None)
    with _request_lock(owner_id=owner_id, request_id=request_id):
        again = _regenerated_again(owner_id=owner_id, request_id=request_id)
        if again is not None:
            return Prepared(again, None)
        answer = selectors.message_get(message_id=message_id, owner_id=owner_id)
        if answer is None or answer["role"] != "assistant" or answer["parent_id"] is None:
            raise ChatError("not_found", "No such assistant message.")
        question = selectors.message_get(message_id=answer["parent_id"], owner_id=owner_id)
        conversation = selectors.conversation_get(
            conversation_id=answer["conversation_id"], owner_id=owner_id
        )
        if question is None or conversation is None:
            raise ChatError("not_found", "No such assistant message.")
        _account_check(owner_id)
        limits.message_rate_hit(owner_id=owner_id)
        model = _resolve_model(conversation["model"])
        _admission_check(model)
        token = limits.generation_slot_reserve(owner_id=owner_id, is_running=_is_running(owner_id))
        try:
            sibling = services.message_create_assistant(
                conversation_id=conversation["id"],
                owner_id=owner_id,
                parent_id=question["id"],
                model=model.name,
                options=answer.get("options") or {},
                generation_id=generation_id,
            )
        except BaseException:
            limits.generation_slot_release(owner_id=owner_id, token_or_generation_id=token)
            raise
        limits.generation_slot_confirm(
            owner_id=owner_id, token=token, generation_id=sibling["generation_id"]
        )
        flags.redis_client().set(
            limits.key("regenerate", owner_id, request_id),
            sibling["generation_id"],
            ex=REGENERATE_REQUEST_TTL_SECONDS,
        )
    dispatch = Dispatch(
        generation_id=sibling["generation_id"],
        owner_id=owner_id,
        queue=model.queue,
        priority=priority,
    )
    return Prepared(
        _accepted(request_id=request_id, user_message=question, assistant=sibling), dispatch
    )


def prepared_and_dispatched(prepare: Callable[..., Prepared], **arguments: Any) -> Prepared:
    """`prepare(**arguments)`, then its task enqueued at once, in the same call: the consumer
    makes one thread hop between a user's Enter and the engine, not two. The caller
    must already follow the answer's group (it chose `generation_id`), so that no delta is
    published unheard."""
    prepared = prepare(**arguments)
    if prepared.dispatch is not None:
        prepared.dispatch()
    return prepared
