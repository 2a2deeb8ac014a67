"""Everything a generation needs before its first token, built in a thread off the engine loop:
the stored message, the model, the prompt within the context window, the sampling parameters,
the vLLM priority, and what happened while it waited (a stop, a lost earlier attempt).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models.functions import Coalesce
from django.utils import timezone

from chat import selectors
from chat.generation import stop, waiting
from chat.generation.record import FINAL_STATES
from config import metrics
from inference.cache import CacheLookup, cache_lookup
from inference.engine import EngineSpec
from inference.models import LanguageModel
from inference.selectors import model_get_enabled
from inference.versions import engine_of, served

logger = logging.getLogger(__name__)

# accounts.User.priority: 0 low, 5 normal, 9 high. vLLM serves the LOWEST value first.
DEFAULT_USER_PRIORITY = 5
MAX_USER_PRIORITY = 9


class GenerationRefused(Exception):
    """The generation cannot run (model gone, prompt too long); the message says why."""


def vllm_priority(user_priority: int | None) -> int:
    """The user's priority (higher is sooner) as vLLM's (lower is sooner)."""
    value = DEFAULT_USER_PRIORITY if user_priority is None else int(user_priority)
    return MAX_USER_PRIORITY - min(max(value, 0), MAX_USER_PRIORITY)


@dataclass(slots=True)
class GenerationJob:
    """Everything the stream needs, prepared off the event loop."""

    generation_id: str
    owner_id: int
    engine: Any
    prompt_token_ids: list[int]
    sampling_params: Any
    model_name: str = ""
    model_version_id: int | None = None  # the version it runs on (None: no versions)
    model_version: str = ""
    spec: EngineSpec | None = None  # the engine it runs on, held while it streams
    conversation_id: str = ""
    queue: str = ""
    priority: int = 0  # vLLM's: lower is served first
    stop_requested: bool = False  # a stop came while the generation waited
    cache: CacheLookup | None = None  # the response cache's entry, and its hit (inference.cache)
    waiting_next: list[str] = field(default_factory=list)  # the queue after this one left it


@dataclass(slots=True)
class Abandoned:
    """An earlier attempt of this task died mid-stream (its heartbeat is stale): the client
    already saw its text, which a fresh answer could not continue, so it is interrupted."""

    message: dict[str, Any]


@dataclass(slots=True)
class Ended:
    """A redelivered task whose generation already ended. Its bill may be missing: the client
    is told before the usage record is written, and a worker lost in between leaves the task
    unacknowledged, so it comes back here."""

    message: dict[str, Any]


# --- the prompt --------------------------------------------------------------------------------


def chat_messages(*, system_prompt: str | None, path: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The conversation as chat-template messages: the system prompt, then root..parent."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    for message in path:
        content = message.get("content") or ""
        if message.get("role") in {"user", "assistant", "system"} and content:
            messages.append({"role": message["role"], "content": content})
    return messages


def prompt_token_ids(
    tokenizer: Any, messages: list[dict[str, str]], *, chat_template: str | None = None
) -> list[int]:
    """`chat_template`: a model version's own (None: the tokenizer's)."""
    own = {} if chat_template is None else {"chat_template": chat_template}
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, **own
    )
    # The template already wrote the special tokens; adding them again would double the BOS.
    return list(tokenizer.encode(text, add_special_tokens=False))


_prompt_token_ids = prompt_token_ids


# Stands for the system prompt while one turn is measured: what a turn adds does not depend on
# the prompt's text, and a long prompt must not be tokenised again for every turn.
_SYSTEM_STAND_IN = {"role": "system", "content": "-"}


def _too_long() -> GenerationRefused:
    return GenerationRefused("The message is too long for this model's context.")


def prompt_fit(
    tokenizer: Any,
    messages: list[dict[str, str]],
    *,
    context_length: int,
    min_output: int,
    chat_template: str | None = None,
) -> list[int]:
    """The prompt's tokens, dropping the oldest turns (never the system prompt or the last
    message) until `min_output` tokens of answer fit in the context.

    Linear in the conversation, not quadratic: the whole conversation is rendered once. When
    it is too long, what dropping the oldest turn saves is measured on that turn and the next
    one alone (a template may write something before whichever turn comes first, e.g. a
    default system prompt), subtracted, and the kept turns are rendered once more to check.
    Only a template whose turns do not add up exactly costs one more render per turn that
    the estimate missed by."""
    budget = context_length - min_output
    prompt_token_ids = functools.partial(_prompt_token_ids, chat_template=chat_template)
    ids = prompt_token_ids(tokenizer, messages)
    if len(ids) <= budget:
        return ids
    first = 1 if messages and messages[0]["role"] == "system" else 0
    head, turns = list(messages[:first]), list(messages[first:])
    if len(turns) <= 1:
        raise _too_long()
    probe = [_SYSTEM_STAND_IN] if head else []
    cut, estimate = 0, len(ids)  # the prompt's length with turns[cut:] kept
    while estimate > budget and cut < len(turns) - 1:
        both = len(prompt_token_ids(tokenizer, [*probe, turns[cut], turns[cut + 1]]))
        next_alone = len(prompt_token_ids(tokenizer, [*probe, turns[cut + 1]]))
        estimate -= both - next_alone
        cut += 1
    ids = prompt_token_ids(tokenizer, head + turns[cut:])
    if len(ids) > budget:
        # Only the last message is left, or the estimate was short: drop on, checking each.
        while len(ids) > budget:
            if cut >= len(turns) - 1:
                raise _too_long()
            cut += 1
            ids = prompt_token_ids(tokenizer, head + turns[cut:])
        return ids
    if len(ids) != estimate:
        # The estimate was long: keep older turns again while they fit (the first cut that fits).
        while cut > 1:
            wider = prompt_token_ids(tokenizer, head + turns[cut - 1 :])
            if len(wider) > budget:
                break
            cut, ids = cut - 1, wider
    return ids


def sampling_for(
    model: LanguageModel, options: dict[str, Any], *, prompt_tokens: int, **extra: Any
) -> Any:
    """The request's options clamped to the model's limits and the room left in the context."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    requested = options.get("max_tokens") or model.default_max_tokens
    room = model.context_length - prompt_tokens
    temperature = options.get("temperature")
    temperature = model.default_temperature if temperature is None else float(temperature)
    if settings.INFERENCE_IGNORE_EOS:
        extra.setdefault("ignore_eos", True)
    # Set by API clients only (api.v1): stop sequences and a seed, passed as they are. The
    # model's own stop sequences (a base model's turn labels) apply to every request.
    if options.get("seed") is not None:
        extra.setdefault("seed", options["seed"])
    stop = _stop_sequences(options.get("stop"), model.stop_sequences)
    if stop:
        extra.setdefault("stop", stop)
    top_p = options.get("top_p")
    return SamplingParams(
        temperature=min(max(temperature, 0.0), 2.0),
        top_p=model.default_top_p if top_p is None else min(max(float(top_p), 0.01), 1.0),
        min_p=model.default_min_p,
        max_tokens=max(1, min(int(requested), model.max_output_tokens, room)),
        output_kind=RequestOutputKind.DELTA,
        **extra,
    )


def _stop_sequences(requested: str | list[str] | None, model_stops: list[str]) -> list[str]:
    """The request's stop sequences, then the model's, each once."""
    wanted = [requested] if isinstance(requested, str) else list(requested or [])
    return list(dict.fromkeys([*wanted, *(model_stops or [])]))


# --- the registry and the user ------------------------------------------------------------------

MODEL_CACHE_SECONDS = 30.0
_model_cache: dict[str | None, tuple[float, LanguageModel]] = {}


def model_cached(*, name: str | None) -> LanguageModel | None:
    """The registry row, re-read at most every 30 s: most generations never touch PostgreSQL."""
    hit = _model_cache.get(name)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    try:
        model = model_get_enabled(name=name)
    finally:
        # This runs in a pool thread; an idle connection left there would never be reused
        # or closed by Django's request cycle.
        connection.close()
    if model is not None:
        _model_cache[name] = (now + MODEL_CACHE_SECONDS, model)
    return model


def user_priority(*, owner_id: int) -> int:
    """The owner's priority now, their own else their plan's (for tasks enqueued without one)."""
    try:
        found = (
            get_user_model()
            .objects.filter(pk=owner_id)
            .values_list(Coalesce("priority", "plan__priority"), flat=True)
            .first()
        )
    finally:
        connection.close()
    return DEFAULT_USER_PRIORITY if found is None else int(found)


# --- the generation -----------------------------------------------------------------------------


def _started_elsewhere(message: dict[str, Any]) -> bool:
    """A `streaming` message whose heartbeat is stale: the attempt that streamed it is gone."""
    heartbeat = message.get("heartbeat_at")
    if heartbeat is None:
        return True
    if timezone.is_naive(heartbeat):
        heartbeat = heartbeat.replace(tzinfo=UTC)  # stand-in stores return naive UTC
    stale = timedelta(seconds=settings.INFERENCE_STALE_AFTER_SECONDS)
    return bool(timezone.now() - heartbeat > stale)


def _leave_waiting_queue(queue: str, generation_id: str) -> list[str]:
    """Take the generation out of the waiting queue; the ones now first (for their new
    positions). Redis trouble must not stop the answer: positions are advisory."""
    try:
        waiting.start(queue=queue, generation_id=generation_id)
        return waiting.first(queue=queue, count=POSITION_FANOUT)
    except Exception:
        logger.warning("could not update the waiting queue %s", queue, exc_info=True)
        return []


def _stop_requested(generation_id: str) -> bool:
    try:
        return stop.requested(generation_id=generation_id)
    except Exception:
        logger.warning("could not read the stop flag of %s", generation_id, exc_info=True)
        return False


# Waiting generations told their new position when one starts (the rest learn on resume).
POSITION_FANOUT = 20


def generation_prepare(
    *, generation_id: str, owner_id: int, priority: int | None = None
) -> GenerationJob | Abandoned | Ended | None:
    """Load the generation and build its request.

    None: nothing to do (unknown, or being streamed by another live attempt). `Ended`: already
    final, to be billed if it is not yet. `Abandoned`: a dead attempt's generation, to be
    interrupted. Raises `GenerationRefused`.
    """
    message = selectors.message_by_generation(generation_id=generation_id, owner_id=owner_id)
    if message is None:
        logger.warning("generation %s of owner %s not found", generation_id, owner_id)
        return None
    state = message.get("state")
    if state in FINAL_STATES:
        return Ended(message)
    if state == "streaming":
        # Redelivered while (or after) another attempt streamed it.
        return Abandoned(message) if _started_elsewhere(message) else None
    model = model_cached(name=message.get("model"))
    if model is None:
        raise GenerationRefused(f"The model {message.get('model')!r} is not available.")
    try:
        # The version admission chose, while it serves; else the model's active one.
        serving = served(model=model, version_id=message.get("model_version_id"))
    finally:
        connection.close()
    model = serving.model
    waiting_next = _leave_waiting_queue(model.queue, generation_id)
    metrics.generation_started(model=model.name, admitted_at=message.get("created_at"))
    conversation = selectors.conversation_get(
        conversation_id=message["conversation_id"], owner_id=owner_id
    )
    path = (
        selectors.message_path(message_id=message["parent_id"], owner_id=owner_id)
        if message.get("parent_id")
        else []
    )
    options = message.get("options") or {}
    system_prompt = options.get("system_prompt") or (conversation or {}).get("system_prompt")
    messages = chat_messages(system_prompt=system_prompt, path=path)
    # Before the engine is touched: a hit needs neither its tokenizer nor its time. Entries
    # are the serving version's own.
    cache = cache_lookup(
        model=model,
        owner_id=owner_id,
        messages=messages,
        sampling=sampling_for(model, options, prompt_tokens=0),
        version="" if serving.version_id is None else str(serving.version_id),
    )
    if cache.hit is not None:
        engine: Any = cache.engine()
        ids: list[int] = []
    else:
        engine = engine_of(serving)
        ids = prompt_fit(
            engine.get_tokenizer(),
            messages,
            context_length=model.context_length,
            min_output=min(64, model.max_output_tokens),
            chat_template=serving.chat_template,
        )
    if priority is None:
        priority = user_priority(owner_id=owner_id)
    return GenerationJob(
        generation_id=generation_id,
        owner_id=owner_id,
        engine=engine,
        prompt_token_ids=ids,
        sampling_params=sampling_for(model, options, prompt_tokens=len(ids)),
        model_name=model.name,
        model_version_id=serving.version_id,
        model_version=serving.version_label,
        spec=serving.spec if cache.hit is None else None,  # a hit holds no engine
        conversation_id=message.get("conversation_id") or "",
        queue=model.queue,
        priority=vllm_priority(priority),
        stop_requested=_stop_requested(generation_id),
        waiting_next=waiting_next,
        cache=cache,
    )
