"""Stop requests, from the web tier to whichever worker runs (or will run) a generation.

A request is both a key (for a worker that starts the generation later, or that missed the
broadcast) and a message on `STOP_CHANNEL` (so a running worker reacts at its next flush
without polling Redis per token). The worker's side is `inference.stop`.
"""

from __future__ import annotations

from chat.generation import lifecycle
from chat.generation.names import STOP_CHANNEL, stop_key
from chat.generation.record import FINAL_STATES
from chat.redis_client import redis_client

STOP_TTL_SECONDS = 6 * 3600


def request(*, owner_id: int, generation_id: str) -> None:
    """Ask for the user's generation to stop; `not_found` when it is not theirs. A generation
    that already ended is left alone."""
    document = lifecycle.get(owner_id=owner_id, generation_id=generation_id)
    if document["state"] not in FINAL_STATES:
        signal(generation_id=generation_id)


def signal(*, generation_id: str) -> None:
    """Publish the stop without an owner check (the caller made it)."""
    client = redis_client()
    client.set(stop_key(generation_id), b"1", ex=STOP_TTL_SECONDS)
    client.publish(STOP_CHANNEL, generation_id)


def requested(*, generation_id: str) -> bool:
    return bool(redis_client().exists(stop_key(generation_id)))
