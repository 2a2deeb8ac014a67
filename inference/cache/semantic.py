"""The semantic cache: a conversation's first question answered from a cached answer to a
question that means the same, by cosine similarity of all-MiniLM-L6-v2 embeddings (the
embedder moderation already ships, `moderation.checks.embedders`).

Each scope (model version, partition, system prompt, sampling: `keys.semantic_scope`) is a
Redis hash from an exact answer key to its question's vector and text, with a sorted set of
when each was added, bounded to `INFERENCE_SEMANTIC_CACHE_ENTRIES` (the oldest go first) and
expiring with the TTL. A lookup compares the question with every vector of its scope (at most
a few hundred 384-dimension dot products) and returns the answer key of the most similar
question at or above the threshold that also passes the word checks of `guard` (numbers,
swapped directions); an answer that expired meanwhile is forgotten.
"""

from __future__ import annotations

import numpy as np
from django.conf import settings

from chat.redis_client import as_text, redis_client
from inference.cache.guard import same_question
from moderation.checks.embedders import MINILM, get_embedder

DIMENSIONS = 384
VECTOR_BYTES = DIMENSIONS * 4  # float32; the question's text follows in the stored value


def normalized(text: str) -> str:
    """Lower case, single spaces, no closing punctuation: the packaged MiniLM's tokenizer
    keeps case, and "What is the capital of France?" scored 0.906 against its lower-case form
    without the question mark."""
    return " ".join(text.lower().split()).rstrip("?!. ")


def embed(text: str) -> np.ndarray:
    """The question's unit-length MiniLM vector (of its `normalized` form)."""
    vectors = get_embedder(MINILM).encode([normalized(text)])
    return np.asarray(vectors[0], dtype=np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def _order_key(scope: str) -> str:
    return f"{scope}:order"


def nearest(
    scope: str, question: str, vector: np.ndarray, *, threshold: float
) -> tuple[str, float] | None:
    """The answer key of the most similar question in `scope` at or above `threshold` that
    asks the same (`guard.same_question`), and its similarity; None when there is none."""
    stored: dict[bytes, bytes] = redis_client().hgetall(scope)  # type: ignore[assignment]
    if not stored:
        return None
    keys = [as_text(k) for k in stored]
    values = list(stored.values())
    if any(len(v) < VECTOR_BYTES for v in values):
        forget(scope, keys)  # written by another version: unusable
        return None
    matrix = np.frombuffer(b"".join(v[:VECTOR_BYTES] for v in values), dtype=np.float32)
    scores = matrix.reshape(len(keys), DIMENSIONS) @ vector
    for index in np.argsort(-scores):
        score = float(scores[index])
        if score < threshold:
            return None
        if same_question(question, values[index][VECTOR_BYTES:].decode("utf-8", "replace")):
            return keys[index], score
    return None


def remember(
    scope: str, answer_key: str, question: str, vector: np.ndarray, *, ttl_seconds: int, now: float
) -> None:
    """Add a question's vector and text under its answer key; trim the scope to its bound."""
    limit = settings.INFERENCE_SEMANTIC_CACHE_ENTRIES
    client = redis_client()
    order = _order_key(scope)
    pipe = client.pipeline()
    value = np.asarray(vector, dtype=np.float32).tobytes() + question.encode("utf-8")
    pipe.hset(scope, answer_key, value)
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
