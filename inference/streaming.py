"""One generation, from the first token to the last: the worker's hot path.

`generation_run` is the coroutine a task submits to the engine loop. It prepares the request
in a thread (`inference.prepare`), then streams vLLM's DELTA outputs. Per output the loop does
a few attribute reads and a list append; everything else happens at most once per flush
(`INFERENCE_FLUSH_INTERVAL_MS`): the held text goes through output moderation, what it
releases is logged for resume (`chat.generation.deltas`) and published as one numbered
`generation.delta`, and the stop flag is read (an in-memory event, `inference.stop`).

A companion task per generation (the keeper) does the slow, periodic work off the hot path:
it checkpoints the released text with its `seq_offsets` and usage about once a second,
refreshes the heartbeat at least every `INFERENCE_HEARTBEAT_SECONDS` even while no token
comes, tells the clients the generation is alive (`generation.progress` with the last seq)
whenever no delta went out for `INFERENCE_PROGRESS_SECONDS`, and, when a stop arrives while
the engine produces nothing (a long prefill, a full batch), cancels the stream itself. Every
ending goes through `inference.services.generation_end`; every event goes out through
`chat.events`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from chat import events
from chat.generation import deltas, lifecycle
from chat.generation.record import Ending
from chat.protocol import GenerationDelta, GenerationProgress
from config import logs, metrics, tracing
from inference import engine as engine_module
from inference.prepare import (
    Abandoned,
    Ended,
    GenerationJob,
    GenerationRefused,
    generation_prepare,
)
from inference.services import generation_bill, generation_end, queue_positions_send
from inference.stop import listener as stop_listener
from inference.stop import registry as stop_registry
from inference.worker import worker_name

logger = logging.getLogger(__name__)

# vLLM's finish reasons, in the protocol's words.
FINISH_REASONS = {"stop": "stop", "length": "length", "abort": "stopped"}
ENGINE_ERROR_MESSAGE = "The model failed to generate an answer. Please try again."
TIMEOUT_MESSAGE = "The answer took too long and was cut off."
INTERRUPTED_MESSAGE = "The answer was interrupted. You can regenerate it."

__all__ = ["generation_run", "generation_stream"]


@dataclass(slots=True)
class StreamState:
    """What the stream has released so far; read by the keeper on the same loop."""

    published: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)  # text length after each delta seq
    length: int = 0
    seq: int = 0
    completion_tokens: int = 0
    first_token_at: float | None = None
    closing: bool = False  # the stream left the engine (or is leaving it)
    stop_cancelled: bool = False  # the keeper cancelled the stream for a stop

    @property
    def text(self) -> str:
        return "".join(self.published)


DeltaLog = Callable[[str, int, str], Awaitable[None]]
# One `redis.asyncio` client per event loop (the worker has one loop; tests have many).
_delta_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
    weakref.WeakKeyDictionary()
)
# Generations are prepared one after another, first in first out: the work is CPU-bound (the
# GIL), and shared out over the loop's pool threads a burst's answers would all reach the
# engine as late as its last one.
_prepare_executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="prepare")
# Fire-and-forget tasks, referenced until done (the loop keeps only weak references).
_background: set[asyncio.Future[Any]] = set()


async def redis_delta_log(generation_id: str, seq: int, text: str) -> None:
    """Record a delta in the resume log (`chat.generation.deltas`) on this loop's client."""
    loop = asyncio.get_running_loop()
    client = _delta_clients.get(loop)
    if client is None:
        import redis.asyncio as aioredis

        client = _delta_clients[loop] = aioredis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5
        )
    await deltas.record_async(client, generation_id=generation_id, seq=seq, text=text)


async def _publish(
    layer: Any, job: GenerationJob, state: StreamState, text: str, delta_log: DeltaLog
) -> None:
    """Number, log and publish one delta. A Redis hiccup loses the live delta, not the
    answer: the checkpoint and the closing message carry the whole text."""
    state.seq += 1
    state.published.append(text)
    state.length += len(text)
    state.offsets.append(state.length)
    try:
        # Logged before it is published: a client that resumes in between finds it in one
        # of the two (chat.replay).
        await delta_log(job.generation_id, state.seq, text)
    except Exception as error:
        logger.warning("delta %s of %s not logged: %s", state.seq, job.generation_id, error)
    event = GenerationDelta(generation_id=job.generation_id, seq=state.seq, text=text)
    await events.to_generation(job.generation_id, event, layer=layer)


async def _checkpoint(job: GenerationJob, state: StreamState) -> None:
    await asyncio.to_thread(
        lifecycle.checkpoint,
        generation_id=job.generation_id,
        owner_id=job.owner_id,
        text=state.text,
        seq=state.seq,
        seq_offsets=list(state.offsets),
        usage={
            "prompt_tokens": len(job.prompt_token_ids),
            "completion_tokens": state.completion_tokens,
        },
        worker=worker_name(),
    )


async def _progress(layer: Any, job: GenerationJob, state: StreamState) -> None:
    """`generation.progress`: alive, and this is the last seq. Best effort, like a delta."""
    event = GenerationProgress(generation_id=job.generation_id, seq=state.seq)
    await events.to_generation(job.generation_id, event, layer=layer)


async def _keeper(
    job: GenerationJob,
    state: StreamState,
    stop: asyncio.Event,
    stream_task: asyncio.Task[Any] | None,
    clock: Callable[[], float],
    layer: Any,
) -> None:
    """Checkpoints, heartbeats and progress, and a stop for a stream that produces no output."""
    every = settings.INFERENCE_CHECKPOINT_SECONDS
    heartbeat_every = settings.INFERENCE_HEARTBEAT_SECONDS
    progress_every = settings.INFERENCE_PROGRESS_SECONDS
    written_seq, written_at = -1, float("-inf")
    # The clients last heard of this generation at `told_at` (a delta, or a progress).
    told_seq, told_at = 0, clock()
    while True:
        now = clock()
        if state.seq != written_seq or now - written_at >= heartbeat_every:
            written_seq, written_at = state.seq, now
            try:
                await _checkpoint(job, state)
            except Exception as error:  # the next round retries; the reaper is the backstop
                logger.warning("checkpoint of %s failed: %s", job.generation_id, error)
        if state.seq != told_seq:
            told_seq, told_at = state.seq, now
        elif now - told_at >= progress_every and not state.closing:
            told_at = now
            await _progress(layer, job, state)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=min(every, heartbeat_every, progress_every))
        if stop.is_set():
            break
    # The stream notices the stop at its next flush; without output it never would.
    await asyncio.sleep(2 * settings.INFERENCE_FLUSH_INTERVAL_SECONDS + 0.05)
    if stream_task is not None and not state.closing and not stream_task.done():
        state.stop_cancelled = True
        stream_task.cancel()


def _moderator(job: GenerationJob) -> Any:
    from moderation.streaming import OutputModerator

    return OutputModerator(
        user_id=job.owner_id,
        conversation_id=job.conversation_id or None,
        generation_id=job.generation_id,
    )


async def generation_stream(
    job: GenerationJob,
    *,
    layer: Any = None,
    clock: Callable[[], float] = time.monotonic,
    moderator: Any = None,
    started_at: float | None = None,
    delta_log: DeltaLog = redis_delta_log,
) -> Ending:
    """Stream `job` to group `gen.<id>` and end it. Returns how it ended. Raises what the
    engine raises (after the generation was ended as failed)."""
    layer = layer or get_channel_layer()
    moderator = moderator if moderator is not None else _moderator(job)
    started_at = clock() if started_at is None else started_at
    flush_every = settings.INFERENCE_FLUSH_INTERVAL_SECONDS
    stop = stop_registry.track(job.generation_id)
    if job.stop_requested:
        stop.set()
    state = StreamState()
    pending: list[str] = []
    finish_reason: str | None = None
    outcome: str | None = None  # "stopped" | "moderated" when cut short
    never_started = False
    failure: BaseException | None = None
    last_flush = float("-inf")
    last_output: float | None = None  # when the engine's previous output came
    keeper = asyncio.ensure_future(_keeper(job, state, stop, asyncio.current_task(), clock, layer))

    async def flush() -> str | None:
        if state.first_token_at is None:
            state.first_token_at = clock()
            # The first text's check and publish: the end of the first token's path in a trace.
            with tracing.span("generation.first_text"):
                return await release()
        return await release()

    async def release() -> str | None:
        text = "".join(pending)
        pending.clear()
        released = await moderator.afeed(text)
        if moderator.blocked:
            return "moderated"
        if released:
            await _publish(layer, job, state, released, delta_log)
        return "stopped" if stop.is_set() else None

    request_id = f"{job.generation_id}-{uuid.uuid4().hex[:8]}"
    prompt = {"prompt_token_ids": job.prompt_token_ids}
    try:
        if stop.is_set():
            outcome = "stopped"  # stopped while queued: the engine never sees it
            never_started = True
        else:
            # The engine request, from its submission to its last output (or its cut).
            # Its engine is held meanwhile: a version change unloads it once drained.
            with (
                engine_module.host.holding(job.spec),
                tracing.span(
                    "engine.generate",
                    {
                        "gen_ai.request.model": job.model_name,
                        "gen_ai.usage.input_tokens": len(job.prompt_token_ids),
                        "vllm.request_id": request_id,
                    },
                    kind="client",
                ),
            ):
                generator = job.engine.generate(
                    prompt, job.sampling_params, request_id, priority=job.priority
                )
                # Leaving this block closes the generator, which aborts the request in vLLM
                # and frees its KV cache (at once, not when the generator is collected).
                async with contextlib.aclosing(generator) as outputs:
                    async with asyncio.timeout(settings.INFERENCE_TASK_TIME_LIMIT_SECONDS):
                        async for output in outputs:
                            completion = output.outputs[0]
                            state.completion_tokens += len(completion.token_ids)
                            now = clock()
                            if last_output is not None:
                                metrics.tokens_streamed(
                                    model=job.model_name,
                                    seconds=now - last_output,
                                    tokens=len(completion.token_ids),
                                )
                            last_output = now
                            engine_module.host.progressed(job.spec)
                            if completion.text:
                                pending.append(completion.text)
                            if output.finished:
                                finish_reason = completion.finish_reason
                            if pending and now - last_flush >= flush_every:
                                last_flush = now
                                outcome = await flush()
                                if outcome is not None:
                                    state.closing = True
                                    break
                        state.closing = True
                tracing.annotate(
                    {
                        "gen_ai.usage.output_tokens": state.completion_tokens,
                        "gen_ai.response.finish_reason": finish_reason,
                    }
                )
        if outcome is None and pending:
            outcome = await flush()
        if outcome is None:
            tail = await moderator.afinish()
            if moderator.blocked:
                outcome = "moderated"
            elif tail:
                await _publish(layer, job, state, tail, delta_log)
    except asyncio.CancelledError:
        if not state.stop_cancelled:
            raise
        # The keeper cut a silent stream short for a stop; the cancel was ours to absorb.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        outcome = "stopped"
    except Exception as error:
        failure = error
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
        stop_registry.untrack(job.generation_id)

    ending = _ending(job, state, clock=clock, started_at=started_at)
    if failure is not None:
        timed_out = isinstance(failure, TimeoutError)
        ending.state = "failed"
        ending.error_code = "timeout" if timed_out else "engine_error"
        ending.error_message = TIMEOUT_MESSAGE if timed_out else ENGINE_ERROR_MESSAGE
    elif outcome == "moderated":
        ending.state, ending.finish_reason = "moderated", "moderated"
        ending.categories = list(moderator.categories)
        ending.moderation_message = moderator.message
    elif outcome == "stopped" or finish_reason == "abort":
        ending.state, ending.finish_reason = "stopped", "stopped"
        if never_started:
            ending.prompt_tokens = 0  # never reached the engine: nothing to bill
    else:
        ending.finish_reason = FINISH_REASONS.get(finish_reason or "stop", "stop")
    if job.cache is not None:
        # Before the client hears of the end: its next, identical question must find it.
        flagged = getattr(moderator, "flagged", True)
        await asyncio.to_thread(job.cache.remember, ending, flagged=flagged)
    # The closing write: final text, state and usage stored, generation.done published.
    with tracing.span("generation.end", {"chat.state": ending.state}):
        await generation_end(ending, layer=layer)
    logger.info(
        "generation ended %s (%s): %d prompt and %d completion tokens, first text after %s ms",
        ending.state,
        ending.finish_reason or ending.error_code,
        ending.prompt_tokens,
        ending.completion_tokens,
        ending.time_to_first_token_ms,
    )
    if failure is not None and not isinstance(failure, TimeoutError):
        raise failure
    return ending


def _ending(
    job: GenerationJob, state: StreamState, *, clock: Callable[[], float], started_at: float
) -> Ending:
    now = clock()
    first = state.first_token_at
    ending = Ending(
        generation_id=job.generation_id,
        owner_id=job.owner_id,
        state="complete",
        text=state.text,
        seq=state.seq,
        seq_offsets=list(state.offsets),
        prompt_tokens=len(job.prompt_token_ids),
        completion_tokens=state.completion_tokens,
        model_name=job.model_name,
        model_version_id=job.model_version_id,
        model_version=job.model_version,
        conversation_id=job.conversation_id,
        time_to_first_token_ms=None if first is None else round((first - started_at) * 1000),
        duration_ms=round((now - started_at) * 1000),
    )
    if job.cache is not None:
        job.cache.bill(ending)  # a hit: marked cached, billed as the plan says
    return ending


def _failed_at_start(generation_id: str, owner_id: int, message: str) -> Ending:
    return Ending(
        generation_id=generation_id,
        owner_id=owner_id,
        state="failed",
        text="",
        seq=0,
        error_code="engine_error",
        error_message=message,
    )


async def generation_run(*, generation_id: str, owner_id: int, priority: int | None = None) -> None:
    """The task's coroutine: prepare, announce the start, stream, and map engine failures."""
    started_at = time.monotonic()
    stop_listener.ensure_started()
    layer = get_channel_layer()
    # Watched before the stop key is read (in prepare): a stop in between is not lost.
    stop_registry.track(generation_id)
    try:
        # In this task's context (log ids, the trace), which run_in_executor does not pass on.
        with tracing.span("generation.prepare"):
            prepared = await asyncio.get_running_loop().run_in_executor(
                _prepare_executor,
                functools.partial(
                    contextvars.copy_context().run,
                    generation_prepare,
                    generation_id=generation_id,
                    owner_id=owner_id,
                    priority=priority,
                ),
            )
    except Exception as error:
        stop_registry.untrack(generation_id)
        refused = isinstance(error, GenerationRefused)
        if not refused:
            logger.exception("generation %s could not start", generation_id)
        message = str(error) if refused else ENGINE_ERROR_MESSAGE
        await generation_end(_failed_at_start(generation_id, owner_id, message), layer=layer)
        if engine_module.is_engine_dead(error):
            engine_module.request_worker_exit(str(error))
        return
    if not isinstance(prepared, GenerationJob):
        stop_registry.untrack(generation_id)
        if isinstance(prepared, Abandoned):
            ending = Ending.from_document(
                prepared.message, state="interrupted", error_message=INTERRUPTED_MESSAGE
            )
            await generation_end(ending, layer=layer)
        elif isinstance(prepared, Ended):
            ending = Ending.from_document(prepared.message)
            await asyncio.to_thread(generation_bill, ending, prepared.message, settling=True)
        return
    logs.bind(conversation_id=prepared.conversation_id)
    await queue_positions_send(layer=layer, started=generation_id, waiting=[])
    if prepared.waiting_next:
        # The others' new places need not delay this answer's first token.
        task = asyncio.ensure_future(
            queue_positions_send(layer=layer, started=None, waiting=prepared.waiting_next)
        )
        _background.add(task)
        task.add_done_callback(_background.discard)
    try:
        await generation_stream(prepared, layer=layer, started_at=started_at)
    except Exception as error:
        if engine_module.is_engine_dead(error):
            engine_module.request_worker_exit(str(error))
        else:
            logger.exception("generation %s failed in the engine", generation_id)
