"""Every event the server pushes to clients goes out through this module.

Two audiences, each a channel-layer group: the followers of a generation (`gen.<id>`: its
deltas, progress, queue position, closing message) and every open connection of a user
(`user.<id>`: `conversation.updated`). Events are protocol models from `chat.protocol`, so
each is built by one typed constructor; consumers relay them as they are. Publishers: the
worker (`inference`), the consumer, and the REST views (`chat.api`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from pydantic import BaseModel

from chat.generation.names import group as generation_group
from chat.protocol import ConversationUpdated

logger = logging.getLogger(__name__)

# Closing messages and conversation updates are retried for about this long (a Redis
# restart); deltas are not: the closing message carries the whole text.
RELIABLE_ATTEMPTS = 6
RELIABLE_FIRST_WAIT = 0.2

__all__ = [
    "CredentialRevoked",
    "CredentialsChanged",
    "conversation_updated",
    "generation_group",
    "to_generation",
    "to_user",
    "to_user_sync",
    "user_group",
]


def user_group(owner_id: int) -> str:
    """Every open connection of one user (all their tabs and devices)."""
    return f"user.{owner_id}"


class CredentialRevoked(BaseModel):
    """To a user's connections, never relayed: the credential named `credential`
    (`accounts.signals.credential_id`) stopped being valid; the connection it opened closes."""

    type: Literal["auth.revoked"] = "auth.revoked"
    credential: str


class CredentialsChanged(BaseModel):
    """To a user's connections, never relayed: the password or the account's status changed;
    each connection authenticates its credential again, and closes when it no longer does."""

    type: Literal["auth.recheck"] = "auth.recheck"


def conversation_updated(conversation: dict[str, Any]) -> ConversationUpdated:
    """`conversation.updated` for a stored conversation, as it is after the change."""
    return ConversationUpdated(
        conversation_id=conversation["id"],
        title=conversation["title"],
        archived=bool(conversation.get("archived")),
        deleted=bool(conversation.get("deleted")),
    )


async def _send(layer: Any, group: str, event: BaseModel, *, reliably: bool) -> bool:
    message = event.model_dump(mode="json")
    wait = RELIABLE_FIRST_WAIT
    attempts = RELIABLE_ATTEMPTS if reliably else 1
    for attempt in range(attempts):
        try:
            await layer.group_send(group, message)
            return True
        except Exception as error:
            if attempt == attempts - 1:
                logger.warning("could not send %s to %s: %r", message["type"], group, error)
                return False
            await asyncio.sleep(wait)
            wait *= 2
    return False


async def to_generation(
    generation_id: str, event: BaseModel, *, layer: Any = None, reliably: bool = False
) -> bool:
    """Publish to the generation's followers. Best effort unless `reliably` (retried with
    backoff while the channel layer is unreachable); never raises. True when sent."""
    layer = layer or get_channel_layer()
    return await _send(layer, generation_group(generation_id), event, reliably=reliably)


async def to_user(
    owner_id: int, event: BaseModel, *, layer: Any = None, reliably: bool = False
) -> bool:
    """Publish to every open connection of the user; like `to_generation`."""
    layer = layer or get_channel_layer()
    return await _send(layer, user_group(owner_id), event, reliably=reliably)


def to_user_sync(owner_id: int, event: BaseModel) -> bool:
    """`to_user` from synchronous code (a REST view), one attempt: the change is stored
    already, and a tab that missed the event sees it on its next list refresh."""
    sent: bool = async_to_sync(to_user)(owner_id, event)
    return sent
