"""Every name a generation has outside the store, defined once: its channel-layer group, the
stop channel, and its Redis keys. The web tier and the worker both build them from here."""

from __future__ import annotations

# Stop requests are published here (a running worker hears them at once) and kept as keys (a
# worker that starts the generation later, or missed the message, reads them).
STOP_CHANNEL = "chat:stop"


def group(generation_id: str) -> str:
    """The channel-layer group of everyone following the generation."""
    return f"gen.{generation_id}"


def stop_key(generation_id: str) -> str:
    return f"chat:stop:{generation_id}"


def delta_log_key(generation_id: str) -> str:
    return f"chat:deltas:{generation_id}"


def waiting_key(queue: str) -> str:
    """The generations waiting on a model queue, in the order they will start."""
    return f"chat:waiting:{queue}"


def waiting_since_key(queue: str) -> str:
    """When each waiting generation arrived (to forget those whose task was lost)."""
    return f"chat:waiting-since:{queue}"


def waiting_arrivals_key(queue: str) -> str:
    """The arrival counter of a queue (orders sends of the same millisecond)."""
    return f"chat:waiting-arrivals:{queue}"


def running_key(queue: str) -> str:
    """The generations a worker of a model queue is streaming now, scored by their start
    (the router reads how many; entries left by a lost worker age out)."""
    return f"chat:running:{queue}"
