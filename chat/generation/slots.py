"""The user's concurrent-generation slots (CHAT_MAX_CONCURRENT_GENERATIONS).

Admission reserves a slot before it stores a generation and confirms it under the generation's
id once stored; the generation's final write releases it (`chat.generation.lifecycle.finish`),
whoever ends it. Two backstops cover a release that never happened (Redis away at that moment,
a process killed between reserve and store): every slot expires, and a user at the limit has
the slots of generations that the store says ended released before being refused.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from django.conf import settings

from chat import selectors
from chat.errors import ChatError
from chat.generation.record import FINAL_STATES
from chat.limits import key, slot_acquire
from chat.redis_client import as_text, redis_client
from config import metrics

# A reserved slot that never became a stored generation (the process died between the two) is
# released after this long.
PENDING_SLOT_SECONDS = 60
# Seconds a refused client is asked to wait before starting another generation; a generation of
# the default model usually ends within a few seconds.
RETRY_AFTER_SECONDS = 2
PENDING_PREFIX = "pending:"


def _slots_key(owner_id: int) -> str:
    return key("generations", owner_id)


def _slot_seconds() -> int:
    # A backstop only: a generation cannot run longer than the task limit, and it may wait in
    # the queue about as long again before it starts.
    return 2 * settings.INFERENCE_TASK_TIME_LIMIT_SECONDS + 60


def _store_says_running(owner_id: int) -> Callable[[str], bool]:
    def is_running(generation_id: str) -> bool:
        message = selectors.message_by_generation(generation_id=generation_id, owner_id=owner_id)
        return message is not None and message.get("state") not in FINAL_STATES

    return is_running


def reserve(
    *, owner_id: int, limit: int | None = None, is_running: Callable[[str], bool] | None = None
) -> str:
    """Reserve one of the user's `limit` slots (their plan's; None:
    CHAT_MAX_CONCURRENT_GENERATIONS); return the reservation's token. Raises `rate_limited`.

    At the limit, `is_running(generation_id)` (default: the store) is asked about each counted
    generation, and those that ended are released before the user is refused."""
    limit = settings.CHAT_MAX_CONCURRENT_GENERATIONS if limit is None else limit
    slots = _slots_key(owner_id)
    token = f"{PENDING_PREFIX}{uuid.uuid4().hex}"
    if slot_acquire(slots, member=token, limit=limit, lifetime=PENDING_SLOT_SECONDS):
        return token
    is_running = is_running or _store_says_running(owner_id)
    client = redis_client()
    ended = [
        member
        for member in (as_text(raw) for raw in client.zrange(slots, 0, -1))
        if not member.startswith(PENDING_PREFIX) and not is_running(member)
    ]
    if ended:
        client.zrem(slots, *ended)
        if slot_acquire(slots, member=token, limit=limit, lifetime=PENDING_SLOT_SECONDS):
            return token
    metrics.rate_limit_refused("concurrency")
    raise ChatError(
        "rate_limited",
        f"At most {limit} answers can be generated at once. Wait for one to finish.",
        retry_after=RETRY_AFTER_SECONDS,
    )


def confirm(*, owner_id: int, token: str, generation_id: str) -> None:
    """Turn a reservation into the slot of the stored generation `generation_id`."""
    slot_acquire(
        _slots_key(owner_id),
        member=generation_id,
        # The reservation already holds the room, so this never refuses (whatever the plan).
        limit=2**31,
        lifetime=_slot_seconds(),
        replace=token,
    )


def release(*, owner_id: int, generation_id: str) -> None:
    """Free a slot: a generation's (when it ends) or a reservation's token (when unused)."""
    redis_client().zrem(_slots_key(owner_id), generation_id)


def held(*, owner_id: int) -> list[str]:
    """The generation ids (and pending reservations) counted against the user now."""
    slots = _slots_key(owner_id)
    client = redis_client()
    client.zremrangebyscore(slots, "-inf", time.time())
    return [as_text(raw) for raw in client.zrange(slots, 0, -1)]
