"""The semantic cache: a conversation's first question answered from a cached answer to a
question that means the same, by cosine similarity of all-MiniLM-L6-v2 embeddings (the
embedder moderation already ships, `moderation.checks.embedders`).

Each scope (model version, partition, system prompt, sampling: `keys.semantic_scope`) is a
Redis hash from an exact answer key to its question's vector, with a sorted set of when each
was added, bounded to `INFERENCE_SEMANTIC_CACHE_ENTRIES` (the oldest go first) and expiring
with the TTL. A lookup compares the question with every vector of its scope (at most a few
hundred 384-dimension dot products) and returns the answer key of the best one at or above
the threshold; an answer that expired meanwhile is forgotten.
"""

from __future__ import annotations

import numpy as np
from django.conf import settings

from chat.redis_client import as_text, redis_client
from moderation.checks.embedders import MINILM, get_embedder

DIMENSIONS = 384


def embed(text: str) -> np.ndarray:
    """The question's unit-length MiniLM vector."""
    vectors = get_embedder(MINILM).encode([text])
    return np.asarray(vectors[0], dtype=np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def _order_key(scope: str) -> str:
    return f"{scope}:order"


def nearest(scope: str, vector: np.ndarray, *, threshold: float) -> tuple[str, float] | None:
    """The answer key of the closest question in `scope` at or above `threshold`, and its
    similarity; None when there is none."""
    stored: dict[bytes, bytes] = redis_client().hgetall(scope)  # type: ignore[assignment]
    if not stored:
        return None
    keys = [as_text(k) for k in stored]
    matrix = np.frombuffer(b"".join(stored.values()), dtype=np.float32)
    if matrix.size != len(keys) * DIMENSIONS:
        forget(scope, keys)  # written by another embedder: unusable
        return None
    scores = matrix.reshape(len(keys), DIMENSIONS) @ vector
    best = int(np.argmax(scores))
    score = float(scores[best])
    return (keys[best], score) if score >= threshold else None


def remember(
    scope: str, answer_key: str, vector: np.ndarray, *, ttl_seconds: int, now: float
) -> None:
    """Add a question's vector under its answer key; trim the scope to its bound."""
    limit = settings.INFERENCE_SEMANTIC_CACHE_ENTRIES
    client = redis_client()
    order = _order_key(scope)
    pipe = client.pipeline()
    pipe.hset(scope, answer_key, np.asarray(vector, dtype=np.float32).tobytes())
    pipe.zadd(order, {answer_key: now})
    pipe.zrange(order, 0, -(limit + 1))  # the oldest beyond the bound
    pipe.expire(scope, ttl_seconds)
    pipe.expire(order, ttl_seconds)
    oldest = pipe.execute()[2]
    if oldest:
        forget(scope, [as_text(k) for k in oldest])


def forget(scope: str, answer_keys: list[str]) -> None:
    if not answer_keys:
        return
    pipe = redis_client().pipeline()
    pipe.hdel(scope, *answer_keys)
    pipe.zrem(_order_key(scope), *answer_keys)
    pipe.execute()
