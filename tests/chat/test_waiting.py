"""The waiting queue of a model (chat/generation/waiting.py) on real Redis: the order
generations start in, and the depth admission reads, which forgets entries nobody removed."""

from __future__ import annotations

import time
import uuid

from chat.generation import waiting
from chat.generation.names import waiting_key, waiting_since_key
from chat.redis_client import redis_client


def _queue() -> str:
    return f"inference.test-{uuid.uuid4().hex[:8]}"


def test_higher_priority_first_then_arrival_order() -> None:
    queue = _queue()
    for generation_id, priority in (("a", 5), ("b", 5), ("c", 9), ("d", 0), ("e", 9)):
        waiting.add(queue=queue, generation_id=generation_id, priority=priority)

    assert waiting.first(queue=queue, count=5) == ["c", "e", "a", "b", "d"]
    assert waiting.positions(entries=[(queue, "a"), (queue, "d"), (queue, "x")]) == [3, 5, None]
    assert waiting.depth(queue=queue) == 5


def test_the_depth_forgets_entries_waiting_past_the_limit_and_keeps_the_rest() -> None:
    queue = _queue()
    client = redis_client()
    for number in range(2_500):  # more than one chunk of the script's removal
        waiting.add(queue=queue, generation_id=f"old-{number}", priority=5)
    old = {f"old-{number}": time.time() - 3_600 for number in range(2_500)}
    client.zadd(waiting_since_key(queue), old)  # as if they had waited an hour
    waiting.add(queue=queue, generation_id="new", priority=5)

    assert waiting.depth(queue=queue) == 2_501  # no limit given: nothing forgotten
    assert waiting.depth(queue=queue, stale_after=600) == 1

    assert waiting.first(queue=queue, count=10) == ["new"]
    assert client.zcard(waiting_since_key(queue)) == 1
    assert client.zcard(waiting_key(queue)) == 1
