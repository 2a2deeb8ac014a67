"""The `/ws/chat/` websocket: authenticate, parse, hand off, relay.

Client frames are validated against `chat.protocol`; every failure becomes a protocol `error`
and the connection stays open (except oversized frames, closed with 1009). Generation events
arrive from workers through the channel-layer group `gen.<generation_id>` already shaped as
protocol messages, and are relayed after a per-generation `seq` filter, so a resumed
subscription never repeats text.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from pydantic import BaseModel, ValidationError

from accounts.ws_auth import accept_or_reject
from chat.errors import ChatError
from chat.generation import (
    Dispatch,
    chat_send_prepare,
    generation_group,
    generation_regenerate_prepare,
    generation_replay,
    generation_stop,
)
from chat.protocol import (
    ChatAccepted,
    ChatSend,
    ClientMessage,
    Error,
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

logger = logging.getLogger(__name__)

CLOSE_MESSAGE_TOO_BIG = 1009


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        if not await accept_or_reject(self):
            return
        self.user = self.scope["user"]
        # generation_id -> highest seq relayed to this client.
        self.relayed_seq: dict[str, int] = {}

    async def disconnect(self, code: int) -> None:
        for generation_id in list(getattr(self, "relayed_seq", {})):
            await self.channel_layer.group_discard(
                generation_group(generation_id), self.channel_name
            )

    # --- client → server ------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.send_message(
                Error(code="bad_request", message="Only text frames are accepted.")
            )
            return
        if len(text_data) * 4 > settings.CHAT_MAX_FRAME_BYTES and (
            len(text_data.encode("utf-8", "surrogatepass")) > settings.CHAT_MAX_FRAME_BYTES
        ):
            await self.close(code=CLOSE_MESSAGE_TOO_BIG)
            return
        try:
            data = json.loads(text_data)
        except (json.JSONDecodeError, RecursionError):
            await self.send_message(
                Error(code="bad_request", message="The frame is not valid JSON.")
            )
            return
        request_id = _request_id_of(data)
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

    async def dispatch_client_message(self, message: ClientMessage) -> None:
        if isinstance(message, Ping):
            await self.send_message(Pong())
        elif isinstance(message, ChatSend):
            await self.handle_chat_send(message)
        elif isinstance(message, GenerationStop):
            await sync_to_async(generation_stop)(
                owner_id=self.user.pk, generation_id=message.generation_id
            )
        elif isinstance(message, GenerationRegenerate):
            await self.handle_regenerate(message)
        elif isinstance(message, GenerationSubscribe):
            await self.handle_subscribe(message)

    async def handle_chat_send(self, message: ChatSend) -> None:
        accepted, dispatch = await sync_to_async(chat_send_prepare)(
            owner_id=self.user.pk, priority=self.user.priority, message=message
        )
        await self.start_following(accepted, dispatch)

    async def handle_regenerate(self, message: GenerationRegenerate) -> None:
        accepted, dispatch = await sync_to_async(generation_regenerate_prepare)(
            owner_id=self.user.pk,
            priority=self.user.priority,
            message_id=message.message_id,
            request_id=message.request_id or uuid.uuid4().hex,
        )
        await self.start_following(accepted, dispatch)

    async def start_following(self, accepted: ChatAccepted, dispatch: Dispatch | None) -> None:
        # Join the group before the task exists, so that no delta is published unheard.
        await self.follow_generation(accepted.generation_id)
        await self.send_message(accepted)
        if dispatch is not None:
            await sync_to_async(dispatch)()
        else:
            await self.handle_subscribe(
                GenerationSubscribe(
                    type="generation.subscribe", generation_id=accepted.generation_id
                )
            )

    async def handle_subscribe(self, message: GenerationSubscribe) -> None:
        # Join first, then read the checkpoint: a delta published in between is either in the
        # checkpoint (and filtered by seq when it arrives) or newer than it (and relayed).
        generation_id = message.generation_id
        already_following = generation_id in self.relayed_seq
        await self.follow_generation(generation_id, after_seq=message.after_seq)
        try:
            replay, seq = await sync_to_async(generation_replay)(
                owner_id=self.user.pk, generation_id=generation_id, after_seq=message.after_seq
            )
        except ChatError:
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

    async def _relay_final(self, event: dict[str, Any]) -> None:
        generation_id = event["generation_id"]
        if generation_id not in self.relayed_seq:
            return
        await self.unfollow_generation(generation_id)
        await self.send(text_data=json.dumps(event, ensure_ascii=False))

    async def send_message(self, message: BaseModel) -> None:
        await self.send(text_data=message.model_dump_json(exclude_none=False))


def _request_id_of(data: Any) -> str | None:
    """The frame's request_id when it is a plausible one, to correlate an error with it."""
    if isinstance(data, dict):
        value = data.get("request_id")
        if isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return None
