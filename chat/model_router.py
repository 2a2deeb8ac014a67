"""The automatic router: which model answers a request that asks for `model: "auto"`.

Among the enabled models the user's plan allows, the router keeps those whose context holds
the prompt (a cheap estimate), orders them by the admin's routing policy, and takes the first
that can answer now: a live worker serves its queue and the queue has room. When none has
room, the first that a live worker serves and whose queue is not full (the request waits
there); only when every queue is full, or no worker is live at all, is the answer `busy`.

The policy (`inference.RoutingPolicy`, one row, and `inference.Route`, edited in the admin):
- `cheapest`: by the registry's prices (prompt plus completion per 1,000 tokens);
- `fastest`: by the tokens per second measured over each model's recent answers (usage
  records); models not yet measured come after, cheapest first;
- `by_task`: the message is embedded with MiniLM (the model the semantic moderation check
  already loads) and compared with each route's example utterances; the route with the nearest
  example, at or above `min_similarity`, puts its model first; the others follow in the
  `fallback` order.

Live state is read per request in two Redis round trips (the workers' liveness keys, then the
queues' waiting and running counts); the registry and the policy are re-read at most every
`CONFIG_SECONDS`, the speeds every `SPEED_SECONDS`, and the routes' example embeddings only
when a route changes. chat reads the registry through Django's app registry by label, as
`chat.catalog` does, since chat never imports `inference`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.apps import apps
from django.conf import settings
from django.db.models import Sum

from accounts.plans import PlanLimits
from chat.catalog import ModelInfo, model_info_from
from chat.errors import ChatError
from chat.generation import waiting
from chat.redis_client import as_text, redis_client
from config.health import LIVE_WORKERS_KEY

logger = logging.getLogger(__name__)

AUTO = "auto"
CHEAPEST, FASTEST, BY_TASK = "cheapest", "fastest", "by_task"
# How often the registry, the policy and the routes are re-read (an admin's edit applies
# within this many seconds), and the measured speeds.
CONFIG_SECONDS = 5.0
SPEED_SECONDS = 60.0
SPEED_SAMPLE = 200  # recent answers per model the speed is measured over
# The message text the classifier embeds: its start is enough to tell the task, and it bounds
# the embedding's cost whatever the message's size.
CLASSIFY_CHARS = 300
# Answer room a model must have left after the prompt (the worker's own minimum).
MIN_OUTPUT_TOKENS = 64
# `inference.worker.liveness_key` (not imported: chat never imports inference).
WORKER_KEY_PREFIX = "chat:worker:"
BUSY_RETRY_AFTER = 5


# --- what the router decides on -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """An enabled model as the router sees it."""

    info: ModelInfo
    price: float  # prompt + completion, per 1,000 tokens
    speed: float | None = None  # measured completion tokens per second; None: not measured


@dataclass(frozen=True, slots=True)
class Load:
    """A queue's state, read now."""

    workers: int  # live workers that consume the queue
    waiting: int
    running: int


@dataclass(frozen=True, slots=True)
class RouteSpec:
    name: str
    model: str
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    strategy: str = CHEAPEST
    fallback: str = CHEAPEST
    min_similarity: float = 0.0
    routes: tuple[RouteSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class Choice:
    model: ModelInfo
    reason: str  # first_choice | fallback_no_worker | fallback_saturated | queued
    route: str | None = None  # by task: the route that matched


# --- pure decisions (unit-tested with doubles) --------------------------------------------------


def estimate_tokens(texts: Sequence[str]) -> int:
    """An upper-side estimate of the prompt's tokens without a tokenizer, in time linear in
    the text: a token per 3 characters (English averages about 4 with these models' BPE
    vocabularies), plus a few tokens per turn for the chat template's markers."""
    return sum(math.ceil(len(text) / 3) + 8 for text in texts)


def fits(model: ModelInfo, prompt_tokens: int) -> bool:
    return prompt_tokens + min(MIN_OUTPUT_TOKENS, model.max_output_tokens) <= model.context_length


def _by_price(candidate: Candidate) -> tuple[float, str]:
    return (candidate.price, candidate.info.name)


def _by_speed(candidate: Candidate) -> tuple[int, float, float, str]:
    measured = candidate.speed is not None
    return (0 if measured else 1, -(candidate.speed or 0.0), candidate.price, candidate.info.name)


def ordered(
    candidates: Sequence[Candidate], strategy: str, *, first: str | None = None
) -> list[Candidate]:
    """The candidates in the policy's order; `first` (a route's model) ahead of the rest."""
    key: Callable[[Candidate], Any] = _by_speed if strategy == FASTEST else _by_price
    result = sorted(candidates, key=key)
    if first is not None:
        result.sort(key=lambda c: c.info.name != first)  # stable: the rest keep their order
    return result


def pick(
    preference: Sequence[Candidate],
    loads: dict[str, Load],
    *,
    max_waiting: int,
    slots_per_worker: int,
    route: str | None = None,
) -> Choice:
    """The first model in `preference` that can start the answer now; else the first with a
    live worker whose queue is not full (the answer waits its turn there). Raises `busy`."""
    live = [c for c in preference if loads[c.info.queue].workers > 0]
    open_queues = [c for c in live if loads[c.info.queue].waiting < max_waiting]
    for candidate in open_queues:
        load = loads[candidate.info.queue]
        if load.waiting + load.running < load.workers * slots_per_worker:
            return Choice(candidate.info, _reason(preference, candidate, loads), route)
    if open_queues:
        return Choice(open_queues[0].info, "queued", route)
    if not live:
        raise ChatError(
            "busy",
            "No model is being served right now. Please try again shortly.",
            retry_after=BUSY_RETRY_AFTER,
        )
    raise ChatError(
        "busy", "Every model is busy. Please try again shortly.", retry_after=BUSY_RETRY_AFTER
    )


def _reason(preference: Sequence[Candidate], chosen: Candidate, loads: dict[str, Load]) -> str:
    top = preference[0]
    if top is chosen:
        return "first_choice"
    return "fallback_no_worker" if loads[top.info.queue].workers == 0 else "fallback_saturated"


class Classifier:
    """The route whose examples' mean embedding (its centroid) is nearest to the message, by
    cosine similarity. (On the routing set the centroid beat the single nearest example: 0.99
    against 0.96 with the full model.)"""

    def __init__(self, routes: Sequence[RouteSpec], encode: Callable[[list[str]], np.ndarray]):
        self.encode = encode
        self.routes = [route for route in routes if route.examples]
        centroids = []
        for route in self.routes:
            examples = list(route.examples)
            vectors = np.concatenate(
                [encode(examples[i : i + 32]) for i in range(0, len(examples), 32)]
            )
            centroid = vectors.mean(axis=0)
            centroids.append(centroid / (np.linalg.norm(centroid) or 1.0))
        self.centroids = np.stack(centroids) if centroids else np.zeros((0, 1))

    def classify(self, text: str) -> tuple[RouteSpec | None, float]:
        """The nearest route and its similarity (None: no routes, or an empty message)."""
        if not self.routes or not text.strip():
            return None, -1.0
        similarities = self.centroids @ self.encode([text[:CLASSIFY_CHARS]])[0]
        best = int(np.argmax(similarities))
        return self.routes[best], float(similarities[best])


def decide(
    candidates: Sequence[Candidate],
    policy: Policy,
    loads: dict[str, Load],
    *,
    prompt_tokens: int,
    classify: Callable[[], tuple[RouteSpec | None, float]] | None,
    max_waiting: int,
    slots_per_worker: int,
) -> Choice:
    """The whole decision over given state: fit, order, then the first that can answer."""
    fitting = [c for c in candidates if fits(c.info, prompt_tokens)]
    if not fitting:
        raise ChatError("too_large", "The message is too long for every model your plan includes.")
    route: RouteSpec | None = None
    if policy.strategy == BY_TASK and classify is not None:
        found, similarity = classify()
        if found is not None and similarity >= policy.min_similarity:
            route = found
    strategy = policy.fallback if policy.strategy == BY_TASK else policy.strategy
    preference = ordered(fitting, strategy, first=route.model if route else None)
    return pick(
        preference,
        loads,
        max_waiting=max_waiting,
        slots_per_worker=slots_per_worker,
        route=route.name if route else None,
    )


# --- the state, read from PostgreSQL and Redis --------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Config:
    candidates: tuple[Candidate, ...]
    policy: Policy
    read_at: float


_lock = threading.Lock()
_config: _Config | None = None
_speeds: tuple[float, dict[str, float]] = (0.0, {})
_classifier: tuple[tuple[tuple[RouteSpec, ...], str], Classifier] | None = None


def _read_config() -> _Config:
    language_model = apps.get_model("inference", "LanguageModel")
    rows = language_model.objects.filter(enabled=True).order_by("name")
    candidates = tuple(
        Candidate(
            info=model_info_from(row),
            price=float(row.price_prompt_per_1k + row.price_completion_per_1k),
        )
        for row in rows
    )
    row = apps.get_model("inference", "RoutingPolicy").objects.filter(pk=1).first()
    routes = tuple(
        RouteSpec(
            name=route.name,
            model=route.model.name,
            examples=tuple(line.strip() for line in route.examples.splitlines() if line.strip()),
        )
        for route in apps.get_model("inference", "Route")
        .objects.filter(enabled=True, model__enabled=True)
        .select_related("model")
        .order_by("name")
    )
    policy = (
        Policy(routes=routes)
        if row is None
        else Policy(row.strategy, row.fallback, float(row.min_similarity), routes)
    )
    return _Config(candidates, policy, time.monotonic())


def config() -> _Config:
    global _config
    found = _config
    if found is None or time.monotonic() - found.read_at > CONFIG_SECONDS:
        found = _config = _read_config()
    return found


def _measured_speeds(names: list[str]) -> dict[str, float]:
    """Completion tokens per second of each model's last `SPEED_SAMPLE` answers."""
    global _speeds
    read_at, speeds = _speeds
    if time.monotonic() - read_at <= SPEED_SECONDS:
        return speeds
    usage = apps.get_model("inference", "UsageRecord")
    speeds = {}
    for name in names:
        recent = usage.objects.filter(
            model=name, completion_tokens__gt=0, duration_ms__gt=0
        ).order_by("-created_at")[:SPEED_SAMPLE]
        totals = usage.objects.filter(pk__in=recent.values("pk")).aggregate(
            tokens=Sum("completion_tokens"), ms=Sum("duration_ms")
        )
        if totals["ms"]:
            speeds[name] = 1000.0 * totals["tokens"] / totals["ms"]
    _speeds = (time.monotonic(), speeds)
    return speeds


def live_queues() -> dict[str, int]:
    """How many live workers consume each queue: the workers whose liveness score is in the
    future (`inference.worker.Liveness`), and the queues their keys list."""
    client = redis_client()
    hosts = [as_text(h) for h in client.zrangebyscore(LIVE_WORKERS_KEY, f"({time.time()}", "+inf")]
    counts: dict[str, int] = {}
    if not hosts:
        return counts
    for raw in client.mget([f"{WORKER_KEY_PREFIX}{host}" for host in hosts]):
        try:
            queues = json.loads(raw or b"{}").get("queues") or []
        except (ValueError, AttributeError):
            continue
        for queue in queues:
            counts[queue] = counts.get(queue, 0) + 1
    return counts


def loads_now(queues: list[str]) -> dict[str, Load]:
    workers = live_queues()
    counts = waiting.load(queues=queues, stale_after=2 * settings.INFERENCE_TASK_TIME_LIMIT_SECONDS)
    return {q: Load(workers.get(q, 0), *counts[q]) for q in queues}


def classifier_for(routes: tuple[RouteSpec, ...]) -> Classifier:
    """The classifier of these routes, built (their examples embedded) when they or the
    embedder change (the static table replaces the full model once ready)."""
    global _classifier
    from chat import route_embedding  # loads torch: only where by-task routing is used

    embedder = route_embedding.encoder()
    key = (routes, embedder.name)
    with _lock:
        if _classifier is None or _classifier[0] != key:
            _classifier = (key, Classifier(routes, embedder.encode))
        return _classifier[1]


def route(*, plan: PlanLimits, texts: Sequence[str], message: str) -> Choice:
    """Choose the model for a request asking for `auto`: `texts` is the prompt the request
    carries (system prompt and turns; a stored conversation's older turns are trimmed by the
    worker to fit any model), `message` the user's newest message (what by-task classifies)."""
    state = config()
    allowed = [c for c in state.candidates if plan.allows_model(c.info.name)]
    if not allowed:
        raise ChatError("not_found", "No model is enabled for your plan.")
    if state.policy.strategy == FASTEST or state.policy.fallback == FASTEST:
        speeds = _measured_speeds([c.info.name for c in state.candidates])
        allowed = [dataclasses.replace(c, speed=speeds.get(c.info.name)) for c in allowed]
    policy = state.policy
    classify = None
    if policy.strategy == BY_TASK and policy.routes:
        classify = lambda: classifier_for(policy.routes).classify(message)  # noqa: E731
    choice = decide(
        allowed,
        policy,
        loads_now([c.info.queue for c in allowed]),
        prompt_tokens=estimate_tokens(texts),
        classify=classify,
        max_waiting=settings.CHAT_MAX_QUEUE_DEPTH,
        slots_per_worker=settings.INFERENCE_MAX_NUM_SEQS,
    )
    logger.info(
        "auto routed to %s (%s%s)",
        choice.model.name,
        choice.reason,
        f", route {choice.route}" if choice.route else "",
    )
    return choice


def forget() -> None:
    """Drop the cached registry, policy and speeds (tests; an admin's edit waits at most
    `CONFIG_SECONDS` otherwise)."""
    global _config, _speeds
    _config = None
    _speeds = (0.0, {})
