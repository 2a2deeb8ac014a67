"""Admission: the one place where a user's request becomes stored work for a worker.

A chat.send (`chat_send_prepare`) and a regenerate (`generation_regenerate_prepare`) go
through the same path, `_admitted`: a repeated `request_id` gets the original `chat.accepted`;
then the account, the user's rate and quota, the target conversation and model, the model's
queue depth, input moderation (chat.send), and a concurrent-generation slot are checked; only
then are the user message (chat.send) and a queued assistant message stored (nothing the user
typed is lost once accepted, and nothing refused is ever stored or queued). It returns the
`chat.accepted` message together with the `Dispatch` that enqueues the worker task: the
consumer joins the generation's group before, so no delta can be published unheard.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from pymongo.errors import DuplicateKeyError

from accounts.plans import PlanLimits, plan_limits_for_user
from chat import events, limits, model_router, selectors, services, usage
from chat.catalog import ModelInfo, model_info_get
from chat.errors import ChatError
from chat.generation import requests, slots, versions, waiting
from chat.generation.record import SOURCE_API
from chat.protocol import (
    ChatAccepted,
    ChatSend,
    ConversationUpdated,
    ModerationBlocked,
    SendOptions,
)
from config import logs, metrics, tracing
from config.celery import app as celery_app
from moderation.services import moderate_input

GENERATE_TASK = "inference.generate"
TITLE_CHARS = 60
# Seconds a client refused with `busy` is asked to wait.
BUSY_RETRY_AFTER = 5


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
    conversation_id: str | None = None

    def __call__(self) -> None:
        waiting.add(queue=self.queue, generation_id=self.generation_id, priority=self.priority)
        # The task's headers carry the log ids of what it answers (config/logs.py) and the
        # trace (config/tracing.py).
        ids = logs.adding(
            user_id=self.owner_id,
            conversation_id=self.conversation_id,
            generation_id=self.generation_id,
        )
        with (
            ids,
            tracing.span(
                f"enqueue {GENERATE_TASK}", {"messaging.destination": self.queue}, kind="producer"
            ),
        ):
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
                # The trace goes on in the worker's run of the task (config/tracing.py).
                headers=tracing.headers(),
            )


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the consumer sends and starts for one accepted message."""

    accepted: ChatAccepted
    dispatch: Dispatch | None  # None: a repeated request, already started
    conversation_updated: ConversationUpdated | None = None
    model: ModelInfo | None = None  # the model that answers (None: a repeated request)
    model_version: str = ""  # the label of the version chosen for it ("": none, or repeated)


def _title_from(content: str) -> str:
    line = " ".join(content.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def model_allowed_check(*, model_name: str, plan: PlanLimits) -> None:
    """Refuse a model outside the user's plan (`forbidden`, naming what the plan includes)."""
    if not plan.allows_model(model_name):
        raise ChatError(
            "forbidden",
            f"The {plan.plan} plan does not include the model {model_name}; it includes "
            f"{', '.join(plan.allowed_models)}.",
            fields={"model": [f"not on the {plan.plan} plan"]},
        )


def _resolve_model(
    name: str | None, plan: PlanLimits, prompt: tuple[list[str], str] = ([], "")
) -> ModelInfo:
    """The enabled model `name` (None: the default, or else the plan's first; "auto": the
    router's choice for `prompt`, the texts sent and the newest message), if the user's plan
    allows it, its output limit lowered to the plan's."""
    if name == model_router.AUTO:
        model: ModelInfo | None = model_router.route(
            plan=plan, texts=prompt[0], message=prompt[1]
        ).model
    else:
        model = model_info_get(name=name)
    if model is not None and name is None and not plan.allows_model(model.name):
        model = next(filter(None, map(lambda n: model_info_get(name=n), plan.allowed_models)), None)
    if model is None:
        raise ChatError("not_found", f"No such model: {name}." if name else "No model is enabled.")
    model_allowed_check(model_name=model.name, plan=plan)
    if plan.max_output_tokens is not None and plan.max_output_tokens < model.max_output_tokens:
        model = dataclasses.replace(model, max_output_tokens=plan.max_output_tokens)
    return model


def _account(owner_id: int) -> PlanLimits:
    """The limits of the user's plan, read for this message (when it arrived, with the other
    senders' of that moment: `accounts.plans.plans_prefetched`). Authentication happened at
    connect; an account disabled since then starts nothing more."""
    plan = plan_limits_for_user(user_id=owner_id)
    if plan is None:
        raise ChatError("forbidden", "This account is disabled.")
    return plan


def _budget_check(owner_id: int, plan: PlanLimits) -> None:
    """Refuse a new answer once the month's tokens reach the plan's budget."""
    if not plan.monthly_token_budget:
        return
    if usage.tokens_this_month(owner_id=owner_id) >= plan.monthly_token_budget:
        metrics.rate_limit_refused("tokens")
        raise ChatError(
            "quota_exceeded",
            f"The {plan.plan} plan's budget of {plan.monthly_token_budget:,} tokens this month "
            "is used up.",
            retry_after=usage.seconds_to_next_month(),
        )


def _queue_check(model: ModelInfo) -> None:
    depth = waiting.depth(
        queue=model.queue, stale_after=2 * settings.INFERENCE_TASK_TIME_LIMIT_SECONDS
    )
    if depth >= settings.CHAT_MAX_QUEUE_DEPTH:
        raise ChatError(
            "busy", "The model is busy. Please try again shortly.", retry_after=BUSY_RETRY_AFTER
        )


def _stored_options(options: SendOptions | None, model: ModelInfo) -> dict[str, Any]:
    """The request's options, clamped to the model's limits (the worker clamps again)."""
    stored = options.model_dump(exclude_none=True) if options is not None else {}
    return _max_tokens_clamped(stored, model)


def _max_tokens_clamped(options: dict[str, Any], model: ModelInfo) -> dict[str, Any]:
    """`options` with max_tokens within the model's (and the plan's) output limit, and set to
    that limit when it is below the model's default (the worker knows only the model's)."""
    if "max_tokens" in options:
        options["max_tokens"] = min(int(options["max_tokens"]), model.max_output_tokens)
    elif model.default_max_tokens > model.max_output_tokens:
        options["max_tokens"] = model.max_output_tokens
    return options


def _moderated_content(
    content: str, *, owner_id: int, conversation_id: str | None, request_id: str | None
) -> str:
    with tracing.span("moderation.input", {"chat.content_chars": len(content)}):
        decision = moderate_input(
            content, user_id=owner_id, conversation_id=conversation_id, request_id=request_id
        )
        tracing.annotate({"moderation.action": decision.action})
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


def system_prompt_checked(prompt: Any, *, owner_id: int, conversation_id: str) -> Any:
    """A system prompt set over REST (`PATCH /api/conversations/{id}`), moderated like a
    message: the text to store, redacted where moderation redacts. What is not a non-empty
    string within the size limit comes back as it is, for the store to refuse or to clear.

    Raises `ChatError` `moderation_blocked` (HTTP 400) with the categories under
    `fields.system_prompt` when moderation blocks it; then nothing is stored."""
    if (
        not isinstance(prompt, str)
        or not prompt.strip()
        or len(prompt) > services.SYSTEM_PROMPT_MAX_CHARS
    ):
        return prompt
    try:
        return _moderated_content(
            prompt, owner_id=owner_id, conversation_id=conversation_id, request_id=None
        )
    except InputBlocked as blocked:
        raise ChatError(
            "moderation_blocked",
            blocked.message.message,
            fields={"system_prompt": [f"blocked: {', '.join(blocked.message.categories)}"]},
        ) from None


def _room_check(conversation: dict, *, adding: int) -> None:
    """Refuse a new answer that would take the conversation past
    `CHAT_MAX_MESSAGES_PER_CONVERSATION` messages (a chat.send adds two, a regenerate one)."""
    limit = settings.CHAT_MAX_MESSAGES_PER_CONVERSATION
    if int(conversation.get("message_count") or 0) + adding > limit:
        raise ChatError(
            "too_large",
            f"This conversation is at its limit of {limit:,} messages. Start a new conversation.",
        )


def content_check(content: str) -> None:
    """Refuse empty or oversized content: the first check of a chat.send, before any work that
    grows with the content (moderation, embedding, the store)."""
    if not content.strip():
        raise ChatError("bad_request", "content: must not be empty")
    if len(content) > settings.CHAT_MAX_CONTENT_CHARS:
        raise ChatError(
            "too_large", f"content: at most {settings.CHAT_MAX_CONTENT_CHARS} characters"
        )


# --- the one admission path ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stored:
    """What a new answer's store step wrote."""

    question: dict  # the user message answered
    answer: dict  # the queued assistant message: the generation's record
    conversation_updated: ConversationUpdated | None = None  # a new conversation


@dataclass(frozen=True, slots=True)
class Target:
    """Where a new answer goes, checked, and how to store it."""

    model: ModelInfo
    store: Callable[[], Stored]


def _admitted(
    *,
    owner_id: int,
    priority: int | None,
    request_id: str,
    again: Callable[[], ChatAccepted | None],
    target: Callable[[PlanLimits], Target],
) -> Prepared:
    """Admit a new answer, the same way for a chat.send and a regenerate.

    In order: a repeated `request_id` gets its first `chat.accepted` (`again`), checked again
    under the request's lock; the account and its plan, read now (accounts.plans); the
    plan's message rate, quota and monthly token budget; the target (`target`: its
    conversation and a model the plan allows, the model's queue depth, and for a chat.send
    input moderation); a concurrent-generation slot of the plan's; then the store. Whatever
    refuses raises, and then nothing was stored and no slot is held. `priority` None: the
    account's (its own, else its plan's)."""
    found = again()
    if found is not None:
        return Prepared(found, None)
    with requests.lock(owner_id=owner_id, request_id=request_id):
        found = again()
        if found is not None:
            return Prepared(found, None)
        plan = _account(owner_id)
        limits.message_rate_hit(
            owner_id=owner_id, per_minute=plan.messages_per_minute, per_day=plan.daily_messages
        )
        _budget_check(owner_id, plan)
        checked = target(plan)
        token = slots.reserve(owner_id=owner_id, limit=plan.concurrent_generations)
        try:
            stored = checked.store()
        except DuplicateKeyError:
            # The unique (owner, request_id) index of a real MongoDB caught a racing twin.
            slots.release(owner_id=owner_id, generation_id=token)
            found = again()
            if found is None:
                raise
            return Prepared(found, None)
        except BaseException:
            slots.release(owner_id=owner_id, generation_id=token)
            raise
        generation_id = stored.answer["generation_id"]
        slots.confirm(owner_id=owner_id, token=token, generation_id=generation_id)
    dispatch = Dispatch(
        generation_id=generation_id,
        owner_id=owner_id,
        queue=checked.model.queue,
        priority=plan.priority if priority is None else priority,
        conversation_id=stored.answer.get("conversation_id"),
    )
    accepted = requests.accepted(
        request_id=request_id, user_message=stored.question, assistant=stored.answer
    )
    return Prepared(
        accepted,
        dispatch,
        stored.conversation_updated,
        checked.model,
        str(stored.answer.get("model_version") or ""),
    )


# --- chat.send ----------------------------------------------------------------------------------


def _send_target(
    *, owner_id: int, message: ChatSend, plan: PlanLimits
) -> tuple[dict | None, ModelInfo, str | None]:
    """The conversation (None: a new one), the model and the parent message id.

    `parent_id` left out: after the current leaf. `parent_id: null` sent explicitly: a new
    root, which is how the conversation's first message is edited."""
    if message.conversation_id is None:
        if message.parent_id is not None:
            raise ChatError("bad_request", "parent_id: needs a conversation_id")
        return None, _resolve_model(message.model, plan, _send_prompt(message, None)), None
    conversation = selectors.conversation_get(
        conversation_id=message.conversation_id, owner_id=owner_id
    )
    if conversation is None:
        raise ChatError("not_found", "No such conversation.")
    if message.parent_id is not None:
        parent = selectors.message_get(message_id=message.parent_id, owner_id=owner_id)
        if parent is None or parent["conversation_id"] != conversation["id"]:
            raise ChatError("not_found", "No such message.")
    model = _resolve_model(
        message.model or conversation_model_choice(conversation),
        plan,
        _send_prompt(message, conversation),
    )
    if message.parent_id is None and "parent_id" in message.model_fields_set:
        return conversation, model, None
    return conversation, model, message.parent_id or conversation.get("current_leaf_id")


def conversation_model_choice(conversation: dict) -> str | None:
    """What a turn that names no model asks for: the conversation's choice ("auto" for one
    started with it, so that each turn is routed again), else the model of its first answer."""
    return conversation.get("model_choice") or conversation.get("model")


def _send_prompt(message: ChatSend, conversation: dict | None) -> tuple[list[str], str]:
    system = (message.options.system_prompt if message.options else None) or (
        (conversation or {}).get("system_prompt") or ""
    )
    return [system, message.content], message.content


def chat_send_prepare(
    *,
    owner_id: int,
    priority: int | None = None,
    message: ChatSend,
    generation_id: str | None = None,
) -> Prepared:
    """Check, moderate and store the user's message and a queued answer (with `generation_id`
    when given; a repeated `request_id` returns the first answer's).

    Raises `ChatError` (the protocol `error`) or `InputBlocked` (`moderation.blocked`); then
    nothing was stored or queued, so a retry with the same `request_id` starts cleanly.
    """
    request_id = message.request_id
    content_check(message.content)

    def target(plan: PlanLimits) -> Target:
        conversation, model, parent_id = _send_target(owner_id=owner_id, message=message, plan=plan)
        if conversation is not None:
            _room_check(conversation, adding=2)
        _queue_check(model)
        moderated = functools.partial(
            _moderated_content,
            owner_id=owner_id,
            conversation_id=conversation["id"] if conversation else None,
            request_id=request_id,
        )
        content = moderated(message.content)
        # A system prompt reaches the model like a message, so it is checked like one: a
        # blocked prompt refuses the whole send, a redacted one is what is stored.
        options = message.options
        if options is not None and options.system_prompt:
            options = options.model_copy(update={"system_prompt": moderated(options.system_prompt)})

        def store() -> Stored:
            nonlocal conversation
            updated = None
            if conversation is None:
                conversation = services.conversation_create(
                    owner_id=owner_id,
                    title=_title_from(content),
                    model=model.name,
                    system_prompt=options.system_prompt if options else None,
                    model_choice=message.model,
                )
                updated = events.conversation_updated(conversation)
            question = services.message_create_user(
                conversation_id=conversation["id"],
                owner_id=owner_id,
                parent_id=parent_id,
                content=content,
                request_id=request_id,
            )
            answer = services.message_create_assistant(
                conversation_id=conversation["id"],
                owner_id=owner_id,
                parent_id=question["id"],
                model=model.name,
                options=_stored_options(options, model),
                generation_id=generation_id,
                queue=model.queue,
                model_version=versions.turn_version(
                    owner_id=owner_id, conversation=conversation, model_name=model.name
                ),
            )
            return Stored(question, answer, updated)

        return Target(model, store)

    return _admitted(
        owner_id=owner_id,
        priority=priority,
        request_id=request_id,
        again=lambda: requests.accepted_again(owner_id=owner_id, request_id=request_id),
        target=target,
    )


# --- generation.regenerate ----------------------------------------------------------------------


def generation_regenerate_prepare(
    *,
    owner_id: int,
    priority: int | None = None,
    message_id: str,
    request_id: str,
    generation_id: str | None = None,
    model: str | None = None,
) -> Prepared:
    """A new answer, as a sibling of `message_id`, to the same user message, by `model` (None:
    the conversation's; "auto": the router's choice). Idempotent per `request_id` for a day,
    like chat.send."""

    def target(plan: PlanLimits) -> Target:
        answer = selectors.message_get(message_id=message_id, owner_id=owner_id)
        if answer is None or answer["role"] != "assistant" or answer["parent_id"] is None:
            raise ChatError("not_found", "No such assistant message.")
        question = selectors.message_get(message_id=answer["parent_id"], owner_id=owner_id)
        conversation = selectors.conversation_get(
            conversation_id=answer["conversation_id"], owner_id=owner_id
        )
        if question is None or conversation is None:
            raise ChatError("not_found", "No such assistant message.")
        _room_check(conversation, adding=1)
        question_text = question.get("content") or ""
        prompt = [conversation.get("system_prompt") or "", question_text], question_text
        chosen = _resolve_model(model or conversation_model_choice(conversation), plan, prompt)
        _queue_check(chosen)

        def store() -> Stored:
            sibling = services.message_create_assistant(
                conversation_id=conversation["id"],
                owner_id=owner_id,
                parent_id=question["id"],
                model=chosen.name,
                options=answer.get("options") or {},
                generation_id=generation_id,
                queue=chosen.queue,
                # A regeneration draws the version again (a canary's share of them).
                model_version=versions.turn_version(
                    owner_id=owner_id,
                    conversation=conversation,
                    model_name=chosen.name,
                    rechoose=request_id,
                ),
            )
            requests.regenerate_remember(
                owner_id=owner_id, request_id=request_id, generation_id=sibling["generation_id"]
            )
            return Stored(question, sibling)

        return Target(chosen, store)

    return _admitted(
        owner_id=owner_id,
        priority=priority,
        request_id=request_id,
        again=lambda: requests.regenerated_again(owner_id=owner_id, request_id=request_id),
        target=target,
    )


# --- a stateless request (the OpenAI-compatible API) -------------------------------------------


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of a stateless request, as the client sent it."""

    role: str  # system | user | assistant
    content: str


def stateless_prepare(
    *,
    owner_id: int,
    priority: int | None = None,
    turns: list[Turn],
    model: str | None,
    options: dict[str, Any],
    request_id: str,
    generation_id: str | None = None,
    keep: bool = False,
    api_key_id: int | None = None,
) -> Prepared:
    """Admit a request that carries its whole conversation (`turns`, oldest first), by the
    same path as a chat.send: account, rate and quota, model, queue depth, input moderation
    (every turn: the client wrote all of them), a concurrent-generation slot.

    The worker reads a generation from the store, so the turns and a queued answer are stored
    under a conversation that no list, lookup or search shows (`services.conversation_hide`);
    the caller purges it once the answer has ended (`services.conversation_purge`). With
    `keep`, the conversation is the user's like any other (hidden only if storing failed).
    `options` (temperature, max_tokens, top_p, stop, seed) are stored for the worker, with
    max_tokens clamped to the model. The answer is marked as the API's (`SOURCE_API`), asked
    for with the key `api_key_id`, which its bill records. Raises `ChatError` or
    `InputBlocked`, and then nothing was stored or queued."""
    if not turns:
        raise ChatError("bad_request", "messages: at least one is required")
    for turn in turns:
        content_check(turn.content)

    def target(plan: PlanLimits) -> Target:
        last_user = next((t.content for t in reversed(turns) if t.role == "user"), "")
        checked_model = _resolve_model(model, plan, ([t.content for t in turns], last_user))
        _queue_check(checked_model)
        contents = [
            _moderated_content(
                turn.content, owner_id=owner_id, conversation_id=None, request_id=request_id
            )
            for turn in turns
        ]
        stored_options = _max_tokens_clamped(dict(options), checked_model)

        def store() -> Stored:
            conversation = services.conversation_create(
                owner_id=owner_id,
                title=_title_from(contents[-1]),
                model=checked_model.name,
                model_choice=model,
            )
            try:
                parent_id: str | None = None
                last: dict = {}
                for turn, content in zip(turns, contents, strict=True):
                    last = services.message_create_turn(
                        conversation_id=conversation["id"],
                        owner_id=owner_id,
                        parent_id=parent_id,
                        role=turn.role,
                        content=content,
                    )
                    parent_id = last["id"]
                answer = services.message_create_assistant(
                    conversation_id=conversation["id"],
                    owner_id=owner_id,
                    parent_id=last["id"],
                    model=checked_model.name,
                    options=stored_options,
                    generation_id=generation_id,
                    queue=checked_model.queue,
                    source=SOURCE_API,
                    api_key_id=api_key_id,
                    model_version=versions.turn_version(
                        owner_id=owner_id, conversation=conversation, model_name=checked_model.name
                    ),
                )
            except BaseException:
                services.conversation_hide(conversation_id=conversation["id"], owner_id=owner_id)
                raise
            if not keep:
                services.conversation_hide(conversation_id=conversation["id"], owner_id=owner_id)
            return Stored(last, answer)

        return Target(checked_model, store)

    return _admitted(
        owner_id=owner_id,
        priority=priority,
        request_id=request_id,
        again=lambda: None,  # stateless: every request is a new one
        target=target,
    )


def prepared_and_dispatched(prepare: Callable[..., Prepared], **arguments: Any) -> Prepared:
    """`prepare(**arguments)`, then its task enqueued at once, in the same call: the consumer
    makes one thread hop between a user's Enter and the engine, not two. The caller
    must already follow the answer's group (it chose `generation_id`), so that no delta is
    published unheard."""
    with tracing.span("chat.admission"):
        prepared = prepare(**arguments)
        if prepared.dispatch is not None:
            prepared.dispatch()
    return prepared
