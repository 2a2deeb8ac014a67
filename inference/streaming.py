"""One generation, from the stored conversation to the last token: the worker's hot path.

`generation_run` is the coroutine a task submits to the engine loop. It prepares the request
in a thread (store reads, registry, chat template), then streams vLLM's DELTA outputs:
deltas are coalesced into at most one channel-layer message per flush interval, numbered
1, 2, 3, …, checkpointed to the store about once a second in a thread, and closed by one
`generation.done` that carries the whole text. Per-output work is a few attribute reads and
a list append; everything else happens at most once per flush.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from chat.protocol import GenerationDelta, GenerationDone, GenerationError, Usage
from inference import engine as engine_module
from inference.engine import EngineSpec
from inference.models import LanguageModel
from inference.selectors import model_get_enabled

logger = logging.getLogger(__name__)

FINAL_STATES = frozenset({"complete", "stopped", "interrupted", "failed", "moderated"})
# vLLM's finish reasons, in the protocol's words.
FINISH_REASONS = {"stop": "stop", "length": "length", "abort": "stopped"}
ENGINE_ERROR_MESSAGE = "The model failed to generate an answer. Please try again."
TIMEOUT_MESSAGE = "The answer took too long and was cut off."


def _chat(module: str) -> Any:
    """`chat.selectors` / `chat.services`, looked up at call time (the store is chat's)."""
    return importlib.import_module(f"chat.{module}")


class GenerationRefused(Exception):
    """The generation cannot run (model gone, prompt too long); the message says why."""


@dataclass(slots=True)
class GenerationJob:
    """Everything the stream needs, prepared off the event loop."""

    generation_id: str
    owner_id: int
    engine: Any
    prompt_token_ids: list[int]
    sampling_params: Any
    seq_base: int = 0


# --- preparation (runs in a thread) ------------------------------------------------------------


def chat_messages(*, system_prompt: str | None, path: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The conversation as chat-template messages: the system prompt, then root..parent."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    for message in path:
        content = message.get("content") or ""
        if message.get("role") in {"user", "assistant", "system"} and content:
            messages.append({"role": message["role"], "content": content})
    return messages


def prompt_token_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    # The template already wrote the special tokens; adding them again would double the BOS.
    return list(tokenizer.encode(text, add_special_tokens=False))


def prompt_fit(
    tokenizer: Any, messages: list[dict[str, str]], *, context_length: int, min_output: int
) -> list[int]:
    """The prompt's tokens, dropping the oldest turns (never the system prompt or the last
    message) until `min_output` tokens of answer fit in the context."""
    messages = list(messages)
    while True:
        ids = prompt_token_ids(tokenizer, messages)
        if len(ids) + min_output <= context_length:
            return ids
        first = 1 if messages and messages[0]["role"] == "system" else 0
        if len(messages) - first <= 1:
            raise GenerationRefused("The message is too long for this model's context.")
        del messages[first]


def sampling_for(
    model: LanguageModel, options: dict[str, Any], *, prompt_tokens: int, **extra: Any
) -> Any:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    requested = options.get("max_tokens") or model.default_max_tokens
    room = model.context_length - prompt_tokens
    temperature = options.get("temperature")
    return SamplingParams(
        temperature=model.default_temperature if temperature is None else float(temperature),
        top_p=model.default_top_p,
        max_tokens=max(1, min(int(requested), model.max_output_tokens, room)),
        output_kind=RequestOutputKind.DELTA,
        **extra,
    )


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


def generation_prepare(*, generation_id: str, owner_id: int) -> GenerationJob | None:
    """Load the generation and build its request; None when there is nothing to do."""
    selectors = _chat("selectors")
    message = selectors.message_by_generation(generation_id=generation_id, owner_id=owner_id)
    if message is None:
        logger.warning("generation %s of owner %s not found", generation_id, owner_id)
        return None
    if message.get("state") in FINAL_STATES:
        return None  # a redelivered task whose generation already ended
    model = model_cached(name=message.get("model"))
    if model is None:
        raise GenerationRefused(f"The model {message.get('model')!r} is not available.")
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
    engine = engine_module.host.engine_for(EngineSpec.from_model(model))
    ids = prompt_fit(
        engine.get_tokenizer(),
        chat_messages(system_prompt=system_prompt, path=path),
        context_length=model.context_length,
        min_output=min(64, model.max_output_tokens),
    )
    return GenerationJob(
        generation_id=generation_id,
        owner_id=owner_id,
        engine=engine,
        prompt_token_ids=ids,
        sampling_params=sampling_for(model, options, prompt_tokens=len(ids)),
        seq_base=int(message.get("seq") or 0),
    )


# --- the stream (runs on the engine loop) --------------------------------------------------------


def _group(generation_id: str) -> str:
    return f"gen.{generation_id}"


async def generation_stream(
    job: GenerationJob,
    *,
    layer: Any = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Stream `job` to group `gen.<id>` and the store. Raises what the engine raises, after
    the generation was finished as failed."""
    layer = layer or get_channel_layer()
    generation_id, owner_id = job.generation_id, job.owner_id
    group = _group(generation_id)
    flush_every = settings.INFERENCE_FLUSH_INTERVAL_SECONDS
    checkpoint_every = settings.INFERENCE_CHECKPOINT_SECONDS
    published: list[str] = []
    pending: list[str] = []
    seq = job.seq_base
    completion_tokens = 0
    finish_reason: str | None = None
    last_flush = -flush_every
    next_checkpoint = clock() + checkpoint_every
    checkpoint: asyncio.Future[None] | None = None

    async def flush() -> None:
        nonlocal seq
        text = "".join(pending)
        pending.clear()
        published.append(text)
        seq += 1
        event = GenerationDelta(generation_id=generation_id, seq=seq, text=text)
        await layer.group_send(group, event.model_dump(mode="json"))

    request_id = f"{generation_id}-{uuid.uuid4().hex[:8]}"
    prompt = {"prompt_token_ids": job.prompt_token_ids}
    try:
        async with asyncio.timeout(settings.INFERENCE_TASK_TIME_LIMIT_SECONDS):
            async for output in job.engine.generate(prompt, job.sampling_params, request_id):
                completion = output.outputs[0]
                completion_tokens += len(completion.token_ids)
                if completion.text:
                    pending.append(completion.text)
                if output.finished:  # the last output; the loop ends after it
                    finish_reason = completion.finish_reason
                now = clock()
                if pending and now - last_flush >= flush_every:
                    last_flush = now
                    await flush()
                    if now >= next_checkpoint and (checkpoint is None or checkpoint.done()):
                        next_checkpoint = now + checkpoint_every
                        checkpoint = asyncio.ensure_future(
                            asyncio.to_thread(
                                _chat("services").generation_checkpoint,
                                generation_id=generation_id,
                                owner_id=owner_id,
                                text="".join(published),
                                seq=seq,
                            )
                        )
    except Exception as error:
        if pending:
            await flush()
        if checkpoint is not None:
            await asyncio.gather(checkpoint, return_exceptions=True)
        timed_out = isinstance(error, TimeoutError)
        await generation_fail(
            generation_id=generation_id,
            owner_id=owner_id,
            layer=layer,
            text="".join(published),
            seq=seq,
            code="timeout" if timed_out else "engine_error",
            message=TIMEOUT_MESSAGE if timed_out else ENGINE_ERROR_MESSAGE,
            usage={
                "prompt_tokens": len(job.prompt_token_ids),
                "completion_tokens": completion_tokens,
            },
        )
        if timed_out:
            return
        raise

    if pending:
        await flush()
    if checkpoint is not None:
        await asyncio.gather(checkpoint, return_exceptions=True)
    text = "".join(published)
    usage = Usage(prompt_tokens=len(job.prompt_token_ids), completion_tokens=completion_tokens)
    reason = FINISH_REASONS.get(finish_reason or "stop", "stop")
    final = await asyncio.to_thread(
        _chat("services").generation_finish,
        generation_id=generation_id,
        owner_id=owner_id,
        text=text,
        state="complete",
        finish_reason=reason,
        usage=usage.model_dump(),
        seq=seq,
    )
    if final is None:
        return  # already final elsewhere (stopped, reaped): its owner told the clients
    done = GenerationDone(
        generation_id=generation_id,
        finish_reason=reason,  # type: ignore[arg-type]
        text=text,
        usage=usage,
    )
    await layer.group_send(group, done.model_dump(mode="json"))


async def generation_fail(
    *,
    generation_id: str,
    owner_id: int,
    layer: Any,
    text: str,
    seq: int,
    code: str,
    message: str,
    usage: dict[str, int] | None,
) -> None:
    """Finish the generation as failed and tell its subscribers, keeping the text so far."""
    final = await asyncio.to_thread(
        _chat("services").generation_finish,
        generation_id=generation_id,
        owner_id=owner_id,
        text=text,
        state="failed",
        finish_reason=None,
        usage=usage,
        seq=seq,
    )
    if final is None:
        return
    event = GenerationError(
        generation_id=generation_id,
        code=code,  # type: ignore[arg-type]
        message=message,
        text=text,
    )
    await layer.group_send(_group(generation_id), event.model_dump(mode="json"))


async def generation_run(*, generation_id: str, owner_id: int) -> None:
    """The task's coroutine: prepare, stream, and map engine failures."""
    layer = get_channel_layer()
    try:
        job = await asyncio.to_thread(
            generation_prepare, generation_id=generation_id, owner_id=owner_id
        )
    except Exception as error:
        refused = isinstance(error, GenerationRefused)
        if not refused:
            logger.exception("generation %s could not start", generation_id)
        await generation_fail(
            generation_id=generation_id,
            owner_id=owner_id,
            layer=layer,
            text="",
            seq=0,
            code="engine_error",
            message=str(error) if refused else ENGINE_ERROR_MESSAGE,
            usage=None,
        )
        if engine_module.is_engine_dead(error):
            engine_module.request_worker_exit(str(error))
        return
    if job is None:
        return
    try:
        await generation_stream(job, layer=layer)
    except Exception as error:
        if engine_module.is_engine_dead(error):
            engine_module.request_worker_exit(str(error))
        else:
            logger.exception("generation %s failed in the engine", generation_id)
