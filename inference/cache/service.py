"""The response cache's service: look a request up before the engine is touched, bill a hit,
and remember a finished answer.

Called by the worker (`inference.prepare` looks up, `inference.streaming` bills and
remembers), so a hit is served by the same task as a generated answer: it is stored, resumed,
replayed and stopped the same way, and nothing at admission changes. A cache that cannot be
read or written (Redis down, the embedder failing) never fails an answer: the request is
generated as if the cache were off.

Never remembered: anything but a complete answer (stopped, moderated, failed, interrupted), an
answer that output moderation flagged or redacted, and a hit (its entry keeps its own TTL). A
hit that output moderation now blocks or flags (the rules changed) is forgotten.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from chat.generation.record import Ending
from inference.cache import keys, semantic, store
from inference.cache.replay import CachedEngine

logger = logging.getLogger(__name__)

CACHEABLE_FINISH_REASONS = frozenset({"stop", "length"})
BILLING_FREE, BILLING_FULL = "free", "full"


@dataclass(slots=True)
class CacheLookup:
    """One request's place in the cache: where its answer goes, and the answer found."""

    key: str | None = None  # the exact entry; None: not cacheable (or the cache is off)
    scope: str | None = None  # the semantic index, for a first question on an opted-in model
    question: str | None = None  # a first question, with its embedding:
    vector: np.ndarray | None = None  # remembered with the answer for the semantic cache
    hit: store.CachedAnswer | None = None
    hit_key: str | None = None  # the entry that answered
    kind: str = ""  # "exact" | "semantic"
    similarity: float | None = None  # a semantic hit's
    billing: str = BILLING_FREE  # the user's plan, read on a hit

    def engine(self) -> CachedEngine:
        assert self.hit is not None
        return CachedEngine(self.hit)

    def bill(self, ending: Ending) -> None:
        """Mark a hit's ending as cached, and bill it as the user's plan says: nothing (free,
        the default) or the tokens of the answer it repeats (full)."""
        if self.hit is None:
            return
        ending.cached = True
        ending.saved_tokens = self.hit.prompt_tokens + ending.completion_tokens
        if self.billing == BILLING_FULL and ending.completion_tokens:
            ending.prompt_tokens = self.hit.prompt_tokens
        else:
            ending.prompt_tokens = ending.completion_tokens = 0

    def remember(self, ending: Ending, *, flagged: bool) -> bool:
        """Keep a complete, unflagged, generated answer; forget a hit that moderation now
        stops. True when an entry was written. Synchronous (Redis)."""
        try:
            if self.hit is not None:
                if (ending.state == "moderated" or flagged) and self.hit_key:
                    store.answer_delete(self.hit_key)
                return False
            if self.key is None or not cacheable(ending, flagged=flagged):
                return False
            ttl = settings.INFERENCE_CACHE_TTL_SECONDS
            moment = store.now()
            answer = store.CachedAnswer(
                text=ending.text,
                finish_reason=str(ending.finish_reason),
                prompt_tokens=ending.prompt_tokens,
                completion_tokens=ending.completion_tokens,
                generation_id=ending.generation_id,
                created_at=moment,
            )
            store.answer_put(self.key, answer, ttl_seconds=ttl)
            if self.scope is not None and self.question and self.vector is not None:
                semantic.remember(
                    self.scope, self.key, self.question, self.vector, ttl_seconds=ttl, now=moment
                )
            return True
        except Exception:
            logger.warning(
                "could not remember the answer of %s", ending.generation_id, exc_info=True
            )
            return False


def cacheable(ending: Ending, *, flagged: bool) -> bool:
    """A complete answer, ended by the model (not stopped, moderated or failed), with text, that
    output moderation let through untouched."""
    return (
        ending.state == "complete"
        and ending.finish_reason in CACHEABLE_FINISH_REASONS
        and bool(ending.text)
        and not flagged
    )


def _plan_billing(owner_id: int) -> str:
    try:
        found = (
            get_user_model()
            .objects.filter(pk=owner_id)
            .values_list("plan__cached_answer_billing", flat=True)
            .first()
        )
    finally:
        connection.close()  # a pool thread of the engine loop, like inference.prepare's reads
    return found or BILLING_FREE


def cache_lookup(
    *,
    model: Any,
    owner_id: int,
    messages: list[dict[str, str]],
    sampling: Any,
    version: str = "",
) -> CacheLookup:
    """The request's cache entry and, when one answers it, the hit. `messages`: the whole
    context as the chat template gets it; `sampling`: the engine's sampling parameters;
    `version`: the model version that serves it (its entries are its own).
    Synchronous (Redis, PostgreSQL on a hit, the embedder for a semantic lookup)."""
    if not settings.INFERENCE_CACHE_TTL_SECONDS or not keys.deterministic(sampling):
        return CacheLookup()
    namespace = keys.cache_namespace(model, version)
    partition = keys.partition(model, owner_id)
    key = keys.answer_key(
        namespace=namespace, partition=partition, messages=messages, sampling=sampling
    )
    lookup = CacheLookup(key=key)
    try:
        hit = store.answer_get(key)
        if hit is not None:
            lookup.hit, lookup.hit_key, lookup.kind = hit, key, "exact"
        elif getattr(model, "semantic_cache", False):
            _semantic_lookup(lookup, namespace, partition, messages, sampling)
        if lookup.hit is not None:
            lookup.billing = _plan_billing(owner_id)
    except Exception:
        logger.warning("the response cache could not be read; generating", exc_info=True)
        return CacheLookup()
    return lookup


def _semantic_lookup(
    lookup: CacheLookup,
    namespace: str,
    partition: str,
    messages: list[dict[str, str]],
    sampling: Any,
) -> None:
    question = keys.first_question(messages)
    if question is None:
        return
    lookup.scope = keys.semantic_scope(
        namespace=namespace, partition=partition, messages=messages, sampling=sampling
    )
    lookup.question, lookup.vector = question, semantic.embed(question)
    found = semantic.nearest(
        lookup.scope,
        question,
        lookup.vector,
        threshold=settings.INFERENCE_SEMANTIC_CACHE_THRESHOLD,
    )
    if found is None:
        return
    answer_key, score = found
    hit = store.answer_get(answer_key)
    if hit is None:
        semantic.forget(lookup.scope, [answer_key])  # its answer expired
        return
    lookup.hit, lookup.hit_key, lookup.kind, lookup.similarity = hit, answer_key, "semantic", score
