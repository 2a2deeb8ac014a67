"""`POST /v1/chat/completions`: an async view, served by Daphne's event loop like the websocket.

The request is admitted by the websocket's own path (`chat.generation.admission`,
`stateless_prepare`: account, rate, quota, model, queue depth, input moderation, a
concurrent-generation slot), enqueued on the model's queue with the user's priority, and
followed over the channel layer (`api.v1.follow`). Nothing of the exchange is kept: the
stand-in conversation the worker reads is hidden from the start and purged once the answer has
ended. What is kept is the bill (`inference.UsageRecord`, by the worker) and the API's mark on
it (`api.ApiGeneration`: this key asked for this generation).

A streamed client that disconnects stops the generation through the same stop path as the
websocket's `generation.stop`, which aborts the request in the engine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import close_old_connections
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from api.models import SCOPE_CHAT, ApiKey
from api.services import api_generation_record
from api.v1 import workers
from api.v1.auth import key_for, key_plan
from api.v1.errors import OpenAIError, error_response, from_api_error, invalid, model_not_found
from api.v1.follow import Follower
from api.v1.validation import CompletionRequest, completion_request
from chat import limits, selectors, services
from chat.catalog import ModelInfo, model_info_get
from chat.generation import stop
from chat.generation.admission import (
    InputBlocked,
    Prepared,
    prepared_and_dispatched,
    stateless_prepare,
)
from chat.generation.record import FINAL_STATES
from chat.model_router import AUTO
from chat.store import new_id
from config.errors import ApiError, json_body

logger = logging.getLogger(__name__)

# The protocol's finish reasons in OpenAI's words. A stop (the client went away, or staff
# stopped it) ends the text where it is, like a stop sequence.
FINISH_REASONS = {"stop": "stop", "length": "length", "moderated": "content_filter"}
# `inference.prepare`'s refusal of a prompt that does not fit the context.
TOO_LONG_MESSAGE = "The message is too long for this model's context."
# Whether the response cache answered a request that was not streamed (a stream's headers go
# out before that is known; its last chunks carry `cached`), as CDNs and proxies say it.
CACHE_HEADER = "X-Cache"
# How long an abandoned stream's generation is awaited after its stop, before its stand-in
# conversation is left to the reaper (hidden all the same).
ABANDONED_WAIT_SECONDS = 120.0
# Cleanups of abandoned streams, referenced until done (the loop keeps weak references).
_cleanups: set[asyncio.Future[None]] = set()
# Admissions run one at a time, first in first out, on a thread of their own, as the
# websocket's run on Channels' shared thread: the work is CPU-bound (moderation above all), so
# a burst shared out over one thread per request (Django's default under ASGI) makes every
# answer start as late as the last one. Measured at 16 streams: first tokens 370 ms later
# than the raw engine's with a thread per request (docs/benchmarks.md).
_admission = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="api-admission")


def _admitted(**arguments: Any) -> Prepared:
    close_old_connections()  # a long-lived thread: as database_sync_to_async does
    try:
        return prepared_and_dispatched(stateless_prepare, **arguments)
    finally:
        close_old_connections()


async def admitted(**arguments: Any) -> Prepared:
    """`stateless_prepare` with its task enqueued, on the admission thread, in this context
    (the input moderation's prefetched scores, `moderation.prefetch`)."""
    loop = asyncio.get_running_loop()
    run = contextvars.copy_context().run
    return await loop.run_in_executor(_admission, functools.partial(run, _admitted, **arguments))


async def admitted_prefetched(turns: list[Any], **arguments: Any) -> Prepared:
    """`admitted`, with every turn's text embedded for input moderation ahead of the admission
    thread and batched with other requests' and messages', as the websocket's `chat.send`
    (`limits.input_prefetched_within_rate`): one at a time on that thread, a burst of requests
    was embedded text by text."""
    texts = (turn.content for turn in turns)
    async with limits.input_prefetched_within_rate(arguments["owner_id"], *texts):
        return await admitted(turns=turns, **arguments)


def _usage(closing: dict[str, Any]) -> dict[str, Any]:
    """The closing's usage in OpenAI's shape: the tokens billed (a cached answer's are what the
    plan bills for it: none by default), and, as OpenAI reports prompt caching, the prompt
    tokens served from the response cache (all of them on a hit, none otherwise)."""
    usage = closing.get("usage") or {}
    prompt, completion = (
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": prompt if _cached(closing) else 0},
    }


def _cached(closing: dict[str, Any]) -> bool:
    return bool(closing.get("cached"))


def fingerprint(model: str, version: str) -> str | None:
    """OpenAI's `system_fingerprint` ("the backend configuration that the model runs with"):
    the model and the version that serves it, which is what decides whether a seeded request
    is answered the same again. None for a model without versions."""
    return f"{model}@{version}" if version else None


def _closing_error(closing: dict[str, Any]) -> OpenAIError:
    """A `generation.error` as OpenAI's error."""
    message = closing.get("message") or "The model failed to generate an answer."
    if message == TOO_LONG_MESSAGE:
        return invalid(message, param="messages", code="context_length_exceeded")
    if closing.get("code") == "timeout":
        return OpenAIError(504, message, type="server_error", code="timeout")
    return OpenAIError(500, message, type="server_error", code=closing.get("code"))


def _finish_reason(closing: dict[str, Any]) -> str:
    return FINISH_REASONS.get(closing.get("finish_reason") or "stop", "stop")


class Completion:
    """One admitted request and the generation it follows."""

    def __init__(self, *, key: ApiKey, request: CompletionRequest, model: ModelInfo) -> None:
        self.key = key
        self.request = request
        self.model = model
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.generation_id = new_id()
        self.model_version = ""  # admission's choice, then the one that wrote the answer
        self.conversation_id = ""
        self.follower = Follower(get_channel_layer(), key.user_id, self.generation_id)
        self.streaming = False  # the SSE body has begun (see EventStream)

    async def admit(self) -> None:
        """Admit and enqueue, following the generation first; raises `OpenAIError`.

        A client that disconnects cancels this request's task, but not admission, which runs
        on its own thread and may still start the generation afterwards (a request can wait
        there behind a burst). So admission is awaited shielded, and a cancelled request
        leaves it to `_abandon_admitted`, which stops that generation once it exists."""
        try:
            await self.follower.start()
        except BaseException:
            _detached(self.follower.close)  # cancelled half-way: release what was taken
            raise
        admission = asyncio.ensure_future(
            admitted_prefetched(
                owner_id=self.key.user_id,
                priority=self.key.user.priority,
                turns=self.request.turns,
                model=self.model.name,
                options=self.request.options,
                request_id=f"api-{uuid.uuid4().hex}",
                generation_id=self.generation_id,
                keep=self.key.store_conversations,
                api_key_id=self.key.pk,
            )
        )
        try:
            prepared = await asyncio.shield(admission)
        except asyncio.CancelledError:
            _detached(functools.partial(self._abandon_admitted, admission))
            raise
        except BaseException as error:
            await self.follower.close()
            if isinstance(error, InputBlocked):
                raise invalid(
                    error.message.message, param="messages", code="content_filter"
                ) from None
            if isinstance(error, ApiError):
                raise from_api_error(error) from None
            raise
        self.conversation_id = prepared.accepted.conversation_id
        self.model_version = prepared.model_version
        if prepared.model is not None:
            self.model = prepared.model  # "auto": the model the router chose
        # Beside the answer, not before its first chunk: the bill does not depend on it (the
        # worker's usage record carries the key), and it is one more database write.
        _detached(self._mark)

    async def _mark(self) -> None:
        try:
            await database_sync_to_async(api_generation_record)(
                generation_id=self.generation_id,
                key=self.key,
                model=self.model.name,
                stream=self.request.stream,
            )
        except Exception:  # the answer matters more than its mark; the bill is the worker's
            logger.exception("could not record API generation %s", self.generation_id)

    async def _abandon_admitted(self, admission: asyncio.Future[Prepared]) -> None:
        """The client left while its request was being admitted: once admission is over, stop
        the generation it started, as for a client that leaves mid-answer. Detached."""
        try:
            prepared = await admission
        except BaseException:  # refused: nothing was stored or started
            await self.follower.close()
            return
        self.conversation_id = prepared.accepted.conversation_id
        if prepared.model is not None:
            self.model = prepared.model
        await self._mark()
        await self.abandon()

    async def purge(self) -> None:
        if self.key.store_conversations:
            return  # the owner asked for their exchanges to be kept
        with contextlib.suppress(Exception):
            await sync_to_async(services.conversation_purge, thread_sensitive=False)(
                conversation_id=self.conversation_id, owner_id=self.key.user_id
            )

    async def finish(self) -> None:
        """After the closing message: stop following, and forget the exchange."""
        await self.follower.close()
        await self.purge()

    async def abandon(self) -> None:
        """The client left before the end: stop the generation (the websocket's stop path),
        wait for it to end, then forget the exchange. Runs detached from the request."""
        try:
            await sync_to_async(stop.signal, thread_sensitive=False)(
                generation_id=self.generation_id
            )
            async with asyncio.timeout(ABANDONED_WAIT_SECONDS):
                async for _ in self.follower.deltas():
                    pass
        except Exception as error:
            logger.warning("abandoned generation %s: %r", self.generation_id, error)
            if not await self._ended():
                await self.follower.close()
                return  # the reaper ends it; its conversation stays hidden
        await self.finish()

    async def _ended(self) -> bool:
        document = await sync_to_async(selectors.message_by_generation, thread_sensitive=False)(
            generation_id=self.generation_id, owner_id=self.key.user_id
        )
        return document is None or document.get("state") in FINAL_STATES

    # --- OpenAI's shapes -------------------------------------------------------------------

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model.name,
            "system_fingerprint": fingerprint(self.model.name, self.model_version),
            "choices": choices,
        }
        if self.request.include_usage:
            body["usage"] = None
        body.update(extra)
        return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"

    def delta_chunk(
        self, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any
    ) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self.chunk([choice], **extra)

    def ended(self) -> dict[str, Any]:
        """The closing message, once the generation has ended; the version it names is the
        one that wrote the answer."""
        closing = self.follower.ending.closing if self.follower.ending else {}
        self.model_version = closing.get("model_version") or self.model_version
        return closing

    async def events(self) -> AsyncIterator[bytes]:
        """The SSE stream: a role chunk, content chunks, the finish chunk, the usage chunk
        when asked for, `[DONE]`. A client that leaves mid-way stops the generation."""
        self.streaming = True
        ended = False
        try:
            yield self.delta_chunk({"role": "assistant", "content": ""})
            async for text in self.follower.deltas():
                if text:
                    yield self.delta_chunk({"content": text})
            ended = True
            closing = self.ended()
            if closing.get("type") == "generation.error":
                yield b"data: " + json.dumps(_closing_error(closing).as_body()).encode() + b"\n\n"
            else:
                # Whether the response cache answered is known only now: the chunks that end
                # the stream say it (a field beyond OpenAI's, which clients ignore).
                cached = _cached(closing)
                yield self.delta_chunk({}, finish_reason=_finish_reason(closing), cached=cached)
                if self.request.include_usage:
                    yield self.chunk([], usage=_usage(closing), cached=cached)
            yield b"data: [DONE]\n\n"
        finally:
            # Cancelled (the client disconnected) or closed early: in a task of its own, since
            # this one is being torn down.
            cleanup = asyncio.ensure_future(self.finish() if ended else self.abandon())
            _cleanups.add(cleanup)
            cleanup.add_done_callback(_cleanups.discard)

    async def response(self) -> JsonResponse:
        """The whole answer at once (not streamed)."""
        try:
            text = "".join([piece async for piece in self.follower.deltas()])
        except BaseException:
            cleanup = asyncio.ensure_future(self.abandon())
            _cleanups.add(cleanup)
            cleanup.add_done_callback(_cleanups.discard)
            raise
        await self.finish()
        closing = self.ended()
        if closing.get("type") == "generation.error":
            return error_response(_closing_error(closing))
        cached = _cached(closing)
        response = JsonResponse(
            {
                "id": self.id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.model.name,
                "system_fingerprint": fingerprint(self.model.name, self.model_version),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": _finish_reason(closing),
                    }
                ],
                "usage": _usage(closing),
                "cached": cached,
            }
        )
        response[CACHE_HEADER] = "hit" if cached else "miss"
        return response


class EventStream:
    """The SSE body of one completion. `Completion.events` cleans up after itself once it has
    begun; a client that leaves before its first chunk (while the headers go out) means Django
    never begins it, and then only `close()` runs: Django calls it on every response it sent
    or gave up on. Without it such a request would leave its generation running and its
    channel subscription held, once per request, for anyone to repeat."""

    def __init__(self, completion: Completion) -> None:
        self.completion = completion
        self.events = completion.events()
        self.loop = asyncio.get_running_loop()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.events

    def close(self) -> None:
        """From Django's thread for `response.close()`: abandon a stream never begun."""
        if not self.completion.streaming:
            self.loop.call_soon_threadsafe(_detached, self.completion.abandon)


def _detached(cleanup: Any) -> None:
    task = asyncio.ensure_future(cleanup())
    _cleanups.add(task)
    task.add_done_callback(_cleanups.discard)


async def _model_served(name: str, *, key: ApiKey) -> ModelInfo:
    """The enabled model `name`, if the key owner's plan allows it (else 404, as `/v1/models`
    does not list it) and a worker serves its queue (else 503). "auto" stands for the model
    admission's router will choose (chat/model_router.py), which checks the workers itself."""
    if name == AUTO:
        return ModelInfo(name=AUTO, queue="", context_length=0, max_output_tokens=0)
    model = await database_sync_to_async(model_info_get)(name=name)
    if model is None:
        raise model_not_found(name)
    plan = key_plan(key)
    if not plan.allows_model(model.name):
        raise model_not_found(name, reason=f"The {plan.plan} plan does not include it.")
    served = await sync_to_async(workers.queue_served, thread_sensitive=False)(model.queue)
    if not served:
        raise OpenAIError(
            503,
            f"No worker serves the model '{name}' now. Try again later.",
            type="server_error",
            code="model_unavailable",
            retry_after=10,
        )
    return model


@csrf_exempt  # an API key in a header, never a cookie: nothing for another site to forge
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    if request.method != "POST":
        response = error_response(OpenAIError(405, "Use POST.", code="method_not_allowed"))
        response["Allow"] = "POST"
        return response
    try:
        key = await key_for(request, scope=SCOPE_CHAT)
        try:
            data = json_body(request)
        except ApiError as error:
            status = 413 if error.code == "too_large" else 400
            raise OpenAIError(status, error.message) from None
        parsed = completion_request(data)
        model = await _model_served(parsed.model, key=key)
        completion = Completion(key=key, request=parsed, model=model)
        await completion.admit()
    except OpenAIError as error:
        return error_response(error)
    except Exception:  # a store or Redis outage: still an answer an OpenAI client can read
        logger.exception("chat completion failed before its generation started")
        return error_response(
            OpenAIError(
                500,
                "Something went wrong on our side. Please try again.",
                type="server_error",
                retry_after=1,
            )
        )
    if not parsed.stream:
        return await completion.response()
    stream = StreamingHttpResponse(EventStream(completion), content_type="text/event-stream")
    stream["Cache-Control"] = "no-cache"
    stream["X-Accel-Buffering"] = "no"  # a proxy must pass each chunk on at once
    return stream
