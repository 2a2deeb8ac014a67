"""Prometheus metrics: their one definition, one small function per event, and the text of
every process's samples that `GET /metrics` serves (`config/metrics_api.py`).

Every process of a deployment (Daphne, each Celery worker) writes its samples to files under
`PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multiprocess mode; `scripts/run.sh` and the
test stack set it for every process and empty it at start), and the scrape merges them, so one
`/metrics` on the web tier shows the workers' generations as well. Without that variable (a
test process, `manage.py`), the samples stay in the process and `/metrics` shows those.

The variable must be set before `prometheus_client` is first imported, which is why it comes
from the environment of the process and not from Django's settings.

Callers record an event in one line (`metrics.generation_ended(...)`); a metrics failure is
logged and never breaks the request or the generation it describes. This module imports no
app (it is imported at the import of `chat.limits`, before Django's apps may be loaded).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec

from django.utils import timezone
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

logger = logging.getLogger(__name__)

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

TIME_TO_FIRST_TOKEN = Histogram(
    "chat_time_to_first_token_seconds",
    "From the worker taking a generation to its first text, per model.",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
INTER_TOKEN_LATENCY = Histogram(
    "chat_inter_token_latency_seconds",
    "Time between tokens of a streaming generation (per engine output, divided by its "
    "tokens), per model.",
    ["model"],
    buckets=(0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2),
)
QUEUE_WAIT = Histogram(
    "chat_queue_wait_seconds",
    "From a generation's admission to a worker taking it, per model.",
    ["model"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
GENERATIONS = Counter(
    "chat_generations",
    "Generations ended (billed once each), per model and finish reason.",
    ["model", "finish_reason"],
)
TOKENS = Counter(
    "chat_tokens",
    "Tokens of ended generations, per model and direction (in: prompt, out: completion).",
    ["model", "direction"],
)
WEBSOCKET_CONNECTIONS = Gauge(
    "chat_websocket_connections",
    "Open, authenticated websocket connections (the processes alive now, summed).",
    multiprocess_mode="livesum",
)
MODERATION_DECISIONS = Counter(
    "chat_moderation_decisions",
    "Moderation decisions, per stage (input, output), category and action; input messages "
    "let through count as category none, action allow.",
    ["stage", "category", "action"],
)
RATE_LIMIT_REFUSALS = Counter(
    "chat_rate_limit_refusals",
    "Requests refused by a per-user limit: minute, day, tokens (monthly budget), "
    "concurrency, frames, connections.",
    ["limit"],
)

_P = ParamSpec("_P")


def _never_raises(record: Callable[_P, None]) -> Callable[_P, None]:
    @functools.wraps(record)
    def safe(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            record(*args, **kwargs)
        except Exception:
            logger.warning("metrics: %s failed", record.__name__, exc_info=True)

    return safe


# --- events ------------------------------------------------------------------------------------


@_never_raises
def generation_ended(
    *,
    model: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    time_to_first_token_ms: int | None,
) -> None:
    """A generation's usage was recorded (exactly once per generation)."""
    model = model or "unknown"
    GENERATIONS.labels(model, finish_reason).inc()
    TOKENS.labels(model, "in").inc(prompt_tokens)
    TOKENS.labels(model, "out").inc(completion_tokens)
    if time_to_first_token_ms is not None:
        TIME_TO_FIRST_TOKEN.labels(model).observe(time_to_first_token_ms / 1000)


@_never_raises
def tokens_streamed(*, model: str, seconds: float, tokens: int) -> None:
    """An engine output of `tokens` tokens came `seconds` after the previous one."""
    if tokens > 0:
        per_token = seconds / tokens
        histogram = INTER_TOKEN_LATENCY.labels(model)
        for _ in range(min(tokens, 16)):  # a burst of many tokens weighs like 16
            histogram.observe(per_token)


@_never_raises
def generation_started(*, model: str, admitted_at: Any) -> None:
    """A worker took a generation admitted at `admitted_at` (the stored message's
    `created_at`: an aware or naive UTC datetime)."""
    if not isinstance(admitted_at, datetime):
        return
    if timezone.is_naive(admitted_at):
        admitted_at = admitted_at.replace(tzinfo=UTC)  # stand-in stores return naive UTC
    waited = (timezone.now() - admitted_at).total_seconds()
    QUEUE_WAIT.labels(model).observe(max(0.0, waited))


@_never_raises
def websocket_opened() -> None:
    WEBSOCKET_CONNECTIONS.inc()


@_never_raises
def websocket_closed() -> None:
    WEBSOCKET_CONNECTIONS.dec()


@_never_raises
def moderation_decided(*, stage: str, categories: list[str], action: str) -> None:
    for category in categories or ["none"]:
        MODERATION_DECISIONS.labels(stage, category, action).inc()


@_never_raises
def rate_limit_refused(limit: str) -> None:
    RATE_LIMIT_REFUSALS.labels(limit).inc()


# --- the exposition ---------------------------------------------------------------------------


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    return Path(value) if value else None


def _forget_dead_processes(directory: Path) -> None:
    """Drop the live gauges of processes that are gone (a restarted web process), so that
    `livesum` counts only the living. Counters and histograms of the dead are kept."""
    for path in directory.glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), str(directory))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exposition() -> bytes:
    """The metrics of every process (multiprocess mode), else of this one."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    _forget_dead_processes(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    return generate_latest(registry)
