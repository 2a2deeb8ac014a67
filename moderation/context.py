"""The recent turns of a conversation, as moderation saw them, so that a request split across
messages ("which cleaning products give off a gas" … "in a small closed room" … "while my
roommate sleeps") is judged whole.

Moderation keeps its own short memory (the cache, i.e. Redis, shared by every web process):
the last `MODERATION_CONTEXT_TURNS` user messages of each conversation that it let through,
each cut to `TURN_CHARS`, for `TTL_SECONDS`. It needs nothing from the chat store, and a
blocked message never becomes context (it would make the next harmless one look bad). A cache
outage only means no context: the message itself is still checked.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

TURN_CHARS = 500
TTL_SECONDS = 3600


def _key(user_id: int | None, conversation_id: str) -> str:
    # Per user too: a message sent with someone else's conversation id (refused later as
    # not found) is never judged with, nor added to, that conversation's turns.
    return f"moderation:turns:{user_id}:{conversation_id}"


def recent_turns(*, user_id: int | None, conversation_id: str | None) -> list[str]:
    """The conversation's last allowed user messages, oldest first ([] when none or off)."""
    if not conversation_id or not settings.MODERATION_CONTEXT_TURNS:
        return []
    try:
        turns = cache.get(_key(user_id, conversation_id)) or []
    except Exception:
        logger.warning("moderation: recent turns unavailable", exc_info=True)
        return []
    return [str(turn) for turn in turns][-settings.MODERATION_CONTEXT_TURNS :]


def turn_record(
    *, user_id: int | None, conversation_id: str | None, text: str, earlier: list[str]
) -> None:
    """Remember `text` as the newest turn after `earlier` (what `recent_turns` returned). A
    message asked again keeps its first place instead of taking another (`in_context` reads it
    there): copies would push the conversation's other turns out of the window, and a request
    split across messages would then be read without its first half."""
    if not conversation_id or not settings.MODERATION_CONTEXT_TURNS:
        return
    turn = text[:TURN_CHARS]
    turns = earlier if turn in earlier else [*earlier, turn]
    turns = turns[-settings.MODERATION_CONTEXT_TURNS :]
    try:
        cache.set(_key(user_id, conversation_id), turns, timeout=TTL_SECONDS)
    except Exception:
        logger.warning("moderation: could not record the turn", exc_info=True)


def in_context(turns: list[str], text: str) -> str:
    """The turns and the message as one text, in order: a request cut in two reads whole (the
    semantic check packs neighbouring sentences into one segment anyway). A text repeated
    (the same request asked again) is read once: a repeat says nothing new, and the same
    harmless sentence four times over read as harassment to the semantic check (0.73)."""
    return " ".join(dict.fromkeys([*turns, text]))
