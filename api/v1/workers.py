"""Whether any inference worker serves a model's queue now, from the liveness keys workers
refresh while they consume (`inference.worker.Liveness`)."""

from __future__ import annotations

import json
import time

from chat.redis_client import redis_client

# `inference.worker.liveness_key`: `chat:worker:<hostname>` -> {"queues": [...], ...}, with a
# short expiry. (Not imported: that module connects the worker's signals.)
WORKER_KEY_PATTERN = "chat:worker:*"

# A positive answer is trusted this long: a busy API must not scan Redis per request. A
# negative one is not cached, so a worker that comes up is used at once.
SERVING_CACHE_SECONDS = 5.0
_serving_until: dict[str, float] = {}


def queue_served(queue: str) -> bool:
    """True when a live worker advertises `queue`. Synchronous (Redis): call it in a thread."""
    now = time.monotonic()
    if _serving_until.get(queue, 0.0) > now:
        return True
    client = redis_client()
    for key in client.scan_iter(match=WORKER_KEY_PATTERN, count=100):
        raw = client.get(key)
        try:
            queues = json.loads(raw or b"{}").get("queues") or []
        except (ValueError, AttributeError):
            continue
        if queue in queues:
            _serving_until[queue] = now + SERVING_CACHE_SECONDS
            return True
    return False
