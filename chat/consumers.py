"""The `/ws/chat/` websocket: authenticate, parse, hand off, relay.

Client frames are validated against `chat.protocol`; every failure becomes a protocol `error`
and the connection stays open (except oversized frames, closed with 1009). Generation events
arrive from workers through the channel-layer group `gen.<generation_id>` already shaped as
protocol messages, and are relayed after a per-generation `seq` filter, so a resumed
subscription never repeats text. `conversation.updated` reaches every connection of the user
through the group `user.<id>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from pydantic import BaseModel, ValidationError

from accounts.ws_auth import CLOSE_UNAUTHENTICATED, accept_or_reject, authenticate_websocket
from chat import events, limits
from chat.errors import ChatError
from chat.events import generation_group, user_group
from chat.generation import deltas, stop
from chat.generation.admission import (
    InputBlocked,
    Prepared,
    chat_send_prepare,
    content_check,
    generation_regenerate_prepare,
    prepared_and_dispatched,
)
from chat.generation.pool import run_admission
from chat.generation.replay import replay as generation_replay
from chat.protocol import (
    ChatSend,
    ClientMessage,
    Error,
    GenerationDelta,
    GenerationDone,
    GenerationError,
    GenerationRegenerate,
    GenerationStop,
    GenerationSubscribe,
    Ping,
    Pong,
    parse_client_message,
    validation_summary,
)
from chat.store import new_id
from config import logs, tracing

logger = logging.getLogger(__name__)

CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_MESSAGE_TOO_BIG_FALLBACK = 4009
# The user already has CHAT_MAX_CONNECTIONS_PER_USER connections open, or the connection kept
# sending past its frame limit (4000 + HTTP 429).
CLOSE_TOO_MANY_CONNECTIONS = CLOSE_FLOODING = 4429
# Generation ids we issue fit in a channel-layer group name; anything else cannot be ours.
GENERATION_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# What a frame's type can be to name its span.
FRAME_TYPE = re.compile(r"[a-z][a-z_.]{0,39}")
# An unexpected failure on our side (a store or Redis outage): the client may retry shortly.
INTERNAL_RETRY_AFTER = 1
# Cleanups of consumers that ended without disconnect(), kept until they finish.
_cleanups: set[asyncio.Future[None]] = set()


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.registered = False
        # generation_id -> highest seq relayed to this client.
        self.relayed_seq: dict[str, int] = {}
        self.credentials_checked = time.monotonic()
        self.recheck_timer: asyncio.TimerHandle | None = None
        # The connection count lives in Redis with an expiry, so that connections of a process
        # that died stop counting; the process renews the entries of its open connections
        # (chat.limits), on the event loop. The slot is taken before the handshake completes,
        # so that a client whose connection opened is counted; accept_or_reject still decides
        # who is let in (the authentication middleware has decided already).
        user = self.scope.get("user")
        held = (
            self.scope.get("auth_close_code", -1) is None
            and getattr(user, "is_authenticated", False)
            and await limits.connection_open(owner_id=user.pk, channel_name=self.channel_name)
        )
        if held:
            self.user = user
            self.registered = True
            # Daphne cancels an application that takes too long to end after its client left
            # (a storm of connections queued behind authentication), and then disconnect()
            # never runs or never finishes: the end of this task gives the slot back anyway.
            task = asyncio.current_task()
            if task is not None:
                task.add_done_callback(self.release_at_end)
        if not await accept_or_reject(self):
            # Failed handshakes of one address are bounded (chat.routing, before the next one
            # is authenticated at all).
            limits.connect_failed(address=handshake_address(self.scope))
            return
        self.user = self.scope["user"]
        if not held:
            limit = settings.CHAT_MAX_CONNECTIONS_PER_USER
            await self.send_message(
                Error(code="rate_limited", message=f"At most {limit} open connections per user.")
            )
            await self.close(code=CLOSE_TOO_MANY_CONNECTIONS)
            return
        await self.channel_layer.group_add(user_group(self.user.pk), self.channel_name)
        self.schedule_recheck()

    # --- credentials that stop being valid (PROTOCOL: closed with 4401) -------------------
    #
    # At once: a logout of this connection's session or a revocation of its token reaches the
    # user's group as `auth.revoked` naming the credential, and a password change or a
    # suspension as `auth.recheck` (chat.signals). Should such an event be lost (Redis away),
    # or the credential simply expire, the connection checks its credential again before
    # handling a frame once CHAT_CREDENTIALS_RECHECK_SECONDS have passed, and an idle one
    # about that often on a timer (a timer handle per connection, no task).

    async def auth_revoked(self, event: dict[str, Any]) -> None:
        if event.get("credential") == self.scope.get("auth_credential"):
            await self.close(code=CLOSE_UNAUTHENTICATED)

    async def auth_recheck(self, event: dict[str, Any]) -> None:
        await self.recheck_credentials()

    async def recheck_credentials(self) -> bool:
        """Authenticate the handshake's credential again; close with 4401 and return False
        when it no longer authenticates this connection's user."""
        fresh = await authenticate_websocket(self.scope)
        if fresh["auth_close_code"] is not None or fresh["user"].pk != self.user.pk:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return False
        self.user = fresh["user"]  # its plan and priority as they are now
        self.credentials_checked = time.monotonic()
        return True

    def credentials_due(self) -> bool:
        interval = settings.CHAT_CREDENTIALS_RECHECK_SECONDS
        return interval > 0 and time.monotonic() - self.credentials_checked >= interval

    def schedule_recheck(self) -> None:
        interval = settings.CHAT_CREDENTIALS_RECHECK_SECONDS
        if interval > 0:
            # Spread out, so that connections opened in a storm are not checked in one.
            delay = interval * random.uniform(1.0, 1.5)
            self.recheck_timer = asyncio.get_running_loop().call_later(delay, self.recheck_soon)

    def recheck_soon(self) -> None:
        self.recheck_timer = None
        if self.registered:
            task = asyncio.ensure_future(self.recheck_idle())
            _cleanups.add(task)
            task.add_done_callback(_cleanups.discard)

    async def recheck_idle(self) -> None:
        try:
            if self.credentials_due() and not await self.recheck_credentials():
                return
        except Exception as error:  # a database outage: tried again next time
            logger.warning("credentials could not be checked again: %r", error)
        if self.registered:
            self.schedule_recheck()

    def release_at_end(self, task: asyncio.Task[Any]) -> None:
        """The connection's application has ended: release what disconnect() did not (its
        slot, its place in the user's group). A no-op after a complete disconnect()."""
        limits.connection_close_soon(channel_name=self.channel_name)
        if self.recheck_timer is not None:
            self.recheck_timer.cancel()
            self.recheck_timer = None
        if self.registered:
            self.registered = False
            with contextlib.suppress(RuntimeError):  # the loop is closing
                cleanup = asyncio.ensure_future(
                    self.channel_layer.group_discard(user_group(self.user.pk), self.channel_name)
                )
                _cleanups.add(cleanup)
                cleanup.add_done_callback(_cleanups.discard)

    async def disconnect(self, code: int) -> None:
        limits.frame_connection_forget(channel_name=self.channel_name)
        if self.recheck_timer is not None:
            self.recheck_timer.cancel()
            self.recheck_timer = None
        # Each step on its own: with Redis briefly gone, one failure must not skip the rest.
        # The slot goes first (the user's next connection may wait for it); a failed release
        # is retried in the background. Group memberships left behind expire with the channel
        # layer's group expiry.
        cleanups = []
        if self.registered:
            self.registered = False
            cleanups.append(
                limits.connection_close(owner_id=self.user.pk, channel_name=self.channel_name)
            )
            cleanups.append(
                self.channel_layer.group_discard(user_group(self.user.pk), self.channel_name)
            )
        cleanups.extend(
            self.unfollow_generation(generation_id) for generation_id in list(self.relayed_seq)
        )
        for cleanup in cleanups:
            try:
                await cleanup
            except Exception as error:  # logged; the connection is gone anyway
                logger.warning("websocket cleanup step failed: %r", error)

    # --- client → server ------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.registered:
            return  # refused at connect; the close is on its way
        if text_data is None:
            await self.send_message(
                Error(code="bad_request", message="Only text frames are accepted.")
            )
            return
        if len(text_data) * 4 > settings.CHAT_MAX_FRAME_BYTES and (
            len(text_data.encode("utf-8", "surrogatepass")) > settings.CHAT_MAX_FRAME_BYTES
        ):
            await self.close_too_big()
            return
        data, problem = _decode(text_data)
        if problem is not None:
            await self.send_message(Error(code="bad_request", message=problem))
            return
        request_id = _request_id_of(data)
        # This frame's log lines carry its ids (config/logs.py), and its trace starts here
        # (config/tracing.py: Channels has no instrumentation); the generation's and a new
        # conversation's ids are added once chosen (start).
        frame_type = _frame_type(data)
        with (
            logs.log_context(
                request_id=logs.request_id_from(request_id),
                user_id=self.user.pk,
                conversation_id=_id_of(data, "conversation_id"),
                generation_id=_id_of(data, "generation_id"),
            ),
            tracing.span(
                f"ws {frame_type}",
                {
                    "chat.frame_type": frame_type,
                    "chat.request_id": request_id,
                    "enduser.id": str(self.user.pk),
                },
                kind="server",
            ),
        ):
            await self.handle_frame(data, request_id)

    async def handle_frame(self, data: Any, request_id: str | None) -> None:
        if await self.frame_refused(request_id):
            return
        if self.credentials_due() and not await self.recheck_credentials():
            return
        try:
            message = parse_client_message(data)
        except ValidationError as error:
            await self.send_message(
                Error(request_id=request_id, code="bad_request", message=validation_summary(error))
            )
            return
        try:
            await self.dispatch_client_message(message)
        except ChatError as error:
            await self.send_message(error.as_message(request_id=request_id))
        except InputBlocked as blocked:
            await self.send_message(blocked.message)
        except Exception:
            logger.exception("failed to handle a %s frame", getattr(message, "type", "?"))
            await self.send_message(
                Error(
                    request_id=request_id,
                    code="busy",
                    message="Something went wrong on our side. Please try again.",
                    retry_after=INTERNAL_RETRY_AFTER,
                )
            )

    async def frame_refused(self, request_id: str | None) -> bool:
        """Count the frame against the connection's and the user's frame limits; True when it
        was refused (answered `rate_limited`, or the connection closed for flooding)."""
        wait = limits.frame_connection_hit(channel_name=self.channel_name)
        if wait is None:
            try:
                wait = await sync_to_async(limits.frame_user_hit, thread_sensitive=False)(
                    owner_id=self.user.pk
                )
            except Exception as error:  # Redis away: the connection's own limit still holds
                logger.warning("the per-user frame limit could not be read: %r", error)
        if wait is None:
            return False
        if limits.frame_refusal_closes(channel_name=self.channel_name):
            await self.close(code=CLOSE_FLOODING)
            return True
        await self.send_message(
            Error(
                request_id=request_id,
                code="rate_limited",
                message="Too many messages on this connection. Slow down.",
                retry_after=wait,
            )
        )
        return True

    async def close_too_big(self) -> None:
        # Under `python -m config.server` such a frame never gets here: Daphne refuses it with
        # 1009 itself. Servers that let the app close with 1009 (uvicorn, the test
        # communicator) get it from here; plain Daphne refuses app codes below 3000 (4009).
        try:
            await self.close(code=CLOSE_MESSAGE_TOO_BIG)
        except Exception:
            await self.close(code=CLOSE_MESSAGE_TOO_BIG_FALLBACK)

    async def dispatch_client_message(self, message: ClientMessage) -> None:
        if isinstance(message, Ping):
            await self.send_message(Pong())
        elif isinstance(message, ChatSend):
            content_check(message.content)  # before anything that grows with the content
            # Embedded for the semantic check first, batched with other users' messages.
            async with limits.input_prefetched_within_rate(self.user.pk, message.content):
                await self.start(
                    chat_send_prepare,
                    owner_id=self.user.pk,
                    priority=self.user.priority,
                    message=message,
                )
        elif isinstance(message, GenerationStop):
            await database_sync_to_async(stop.request)(
                owner_id=self.user.pk, generation_id=message.generation_id
            )
        elif isinstance(message, GenerationRegenerate):
            await self.start(
                generation_regenerate_prepare,
                owner_id=self.user.pk,
                priority=self.user.priority,
                message_id=message.message_id,
                request_id=message.request_id or uuid.uuid4().hex,
                model=message.model,
            )
        elif isinstance(message, GenerationSubscribe):
            await self.handle_subscribe(message)

    async def start(self, prepare: Callable[..., Prepared], **arguments: Any) -> None:
        """Check, store and enqueue a new answer (`prepare`), then confirm it to the client.

        The answer's id is chosen here, and this connection joins its group before the task
        can exist, so that no delta is published unheard; the task is enqueued in the same
        call that stores the answer. Nothing is relayed before `chat.accepted`: a consumer
        handles one event at a time.

        The call runs where `CHAT_ADMISSION_THREADS` says (chat.generation.pool): Channels'
        one shared thread, first in, first out, or a small pool of admission threads whose
        round trips to Redis and PostgreSQL overlap."""
        generation_id = new_id()
        logs.bind(generation_id=generation_id)
        tracing.annotate({"chat.generation_id": generation_id})
        await self.follow_generation(generation_id)
        try:
            prepared = await run_admission(
                prepared_and_dispatched, prepare, generation_id=generation_id, **arguments
            )
        except BaseException:
            await self.unfollow_generation(generation_id)
            raise
        accepted = prepared.accepted
        logs.bind(generation_id=accepted.generation_id, conversation_id=accepted.conversation_id)
        tracing.annotate({"chat.conversation_id": accepted.conversation_id})
        logger.info("accepted: answer %s queued", accepted.generation_id)
        if accepted.generation_id != generation_id:
            await self.unfollow_generation(generation_id)  # a repeated request_id
        await self.send_message(accepted)
        if prepared.conversation_updated is not None:
            # To every connection of the user (other tabs list the new conversation too).
            await events.to_user(
                self.user.pk, prepared.conversation_updated, layer=self.channel_layer
            )
        if prepared.dispatch is None:
            # Already started by the first request: follow it like a resuming client.
            await self.handle_subscribe(
                GenerationSubscribe(
                    type="generation.subscribe", generation_id=accepted.generation_id
                )
            )

    async def handle_subscribe(self, message: GenerationSubscribe) -> None:
        # Join first, then read the checkpoint: a delta published in between is either in the
        # checkpoint (and filtered by seq when it arrives) or newer than it (and relayed).
        generation_id = message.generation_id
        if not GENERATION_ID.fullmatch(generation_id):
            raise ChatError("not_found", "No such generation.")
        already_following = generation_id in self.relayed_seq
        await self.follow_generation(generation_id, after_seq=message.after_seq)
        try:
            replay, seq = await database_sync_to_async(generation_replay)(
                owner_id=self.user.pk, generation_id=generation_id, after_seq=message.after_seq
            )
        except BaseException:
            if not already_following:
                await self.unfollow_generation(generation_id)
            raise
        self.relayed_seq[generation_id] = max(seq, self.relayed_seq.get(generation_id, 0))
        for item in replay:
            if isinstance(item, GenerationDone | GenerationError):
                await self._relay_final(item.model_dump(mode="json"))
            else:
                await self.send_message(item)

    async def follow_generation(self, generation_id: str, *, after_seq: int = 0) -> None:
        self.relayed_seq[generation_id] = after_seq
        await self.channel_layer.group_add(generation_group(generation_id), self.channel_name)

    async def unfollow_generation(self, generation_id: str) -> None:
        self.relayed_seq.pop(generation_id, None)
        await self.channel_layer.group_discard(generation_group(generation_id), self.channel_name)

    # --- worker → client (channel-layer events, already protocol messages) -----------------

    async def generation_delta(self, event: dict[str, Any]) -> None:
        generation_id = event["generation_id"]
        seen = self.relayed_seq.get(generation_id)
        if seen is None or event["seq"] <= seen:
            return
        self.relayed_seq[generation_id] = event["seq"]
        await self.send(text_data=json.dumps(event, ensure_ascii=False))

    async def generation_progress(self, event: dict[str, Any]) -> None:
        generation_id = event["generation_id"]
        seen = self.relayed_seq.get(generation_id)
        if seen is None:
            return
        if event["seq"] > seen:
            # Deltas were published that never reached this connection: send them from the
            # worker's log, each with its own seq, before the progress that reveals them.
            await self.catch_up(generation_id, after_seq=seen)
        await self.send(text_data=json.dumps(event, ensure_ascii=False))

    async def catch_up(self, generation_id: str, *, after_seq: int) -> None:
        missed = await sync_to_async(deltas.after, thread_sensitive=False)(
            generation_id=generation_id, after_seq=after_seq
        )
        for seq, text in missed or ():
            delta = GenerationDelta(generation_id=generation_id, seq=seq, text=text)
            await self.generation_delta(delta.model_dump(mode="json"))

    async def generation_done(self, event: dict[str, Any]) -> None:
        await self._relay_final(event)

    async def generation_error(self, event: dict[str, Any]) -> None:
        await self._relay_final(event)

    async def moderation_blocked(self, event: dict[str, Any]) -> None:
        if event.get("generation_id") in self.relayed_seq:
            await self.send(text_data=json.dumps(event, ensure_ascii=False))

    async def generation_queued(self, event: dict[str, Any]) -> None:
        if event["generation_id"] in self.relayed_seq:
            await self.send(text_data=json.dumps(event, ensure_ascii=False))

    async def conversation_updated(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event, ensure_ascii=False))

    async def _relay_final(self, event: dict[str, Any]) -> None:
        generation_id = event["generation_id"]
        if generation_id not in self.relayed_seq:
            return
        await self.unfollow_generation(generation_id)
        await self.send(text_data=json.dumps(event, ensure_ascii=False))

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its `aclose_old_connections()` before every event, which
        runs on Channels' one shared thread: every ping, delta and frame of every connection of
        the process would queue behind whatever holds that thread (admission, moderation of a
        long message), measured in bench/abuse.py as pings at p99 3.7 s under attack. The
        consumer's database work goes through `database_sync_to_async`, which closes stale
        connections itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            # An event this version does not know (a newer web process of a rolling deploy
            # sent it) is dropped, not a crash that closes the client's connection with 1011.
            logger.warning("dropped an event of unknown type %r", message.get("type"))
            return
        await handler(message)

    async def send_message(self, message: BaseModel) -> None:
        await self.send(text_data=message.model_dump_json(exclude_none=False))

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        """Send a frame; one for a client that has just gone away is dropped. Channel-layer
        events keep arriving until the disconnect is handled, and Daphne refuses to send on a
        closed connection (autobahn's `Disconnected`), which would log as a server error."""
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except Disconnected:
            logger.debug("dropped a frame for a client that went away")


def handshake_address(scope: dict[str, Any]) -> str | None:
    """The client's address as `config.proxy.ClientAddressMiddleware` settled it."""
    client = scope.get("client")
    return str(client[0]) if client else None


def _decode(text_data: str) -> tuple[Any, str | None]:
    """The frame's JSON value, or why it cannot be one."""
    try:
        data = json.loads(text_data)
    except (ValueError, RecursionError):
        # ValueError also covers integers past Python's digit limit, which are valid JSON.
        return None, "The frame is not valid JSON."
    # Unpaired surrogates are not text: nothing could store, encode or echo them. A server
    # decoding UTF-8 never delivers them raw, but JSON escapes (\\ud800) can spell them.
    try:
        if not text_data.isascii():
            text_data.encode("utf-8")
        if "\\u" in text_data:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return None, "The frame contains invalid Unicode (an unpaired surrogate)."
    return data, None


def _frame_type(data: Any) -> str:
    """The frame's type for its span's name, when it looks like one (never client text)."""
    value = data.get("type") if isinstance(data, dict) else None
    if isinstance(value, str) and FRAME_TYPE.fullmatch(value):
        return value
    return "frame"


def _id_of(data: Any, name: str) -> str | None:
    """An id field of a frame, for the log context (anything implausible is dropped there)."""
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _request_id_of(data: Any) -> str | None:
    """The frame's request_id when it is a plausible one, to correlate an error with it."""
    if isinstance(data, dict):
        value = data.get("request_id")
        if isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return None
