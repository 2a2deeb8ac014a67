"""What chat needs to know about models, without importing `inference`.

The model registry lives in `inference` (which depends on `chat`). To keep the dependency
one-way, chat reads the registry through Django's app registry by label, the same mechanism
Django uses for swappable models, and only the few fields it needs.

Every answer's admission asks which model it names and which of the model's versions serve,
and the registry changes only by an operator's hand. So each process keeps a snapshot of the
enabled models and their serving versions (two queries) and reads it again when it is
`CHAT_CATALOG_SECONDS` old: an edit made in another process (the admin, `manage.py
model_version`, `prepare_model`) applies within that time, and a save in this process at
once (`forget`, connected in `ChatConfig.ready`). A version chosen in that window after it
stopped serving is harmless: the worker runs such a generation on the model's active
version and records the one it ran (inference.versions.version_for_generation).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings

SERVING_STATES = ("active", "canary")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    queue: str
    context_length: int
    max_output_tokens: int
    default_max_tokens: int = 512  # the worker's max_tokens when a request sets none


@dataclass(frozen=True, slots=True)
class _Snapshot:
    models: dict[str, ModelInfo]  # the enabled models by name
    default: str | None  # the model a request naming none gets
    serving: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    read_at: float = 0.0


_lock = threading.Lock()
_snapshot: _Snapshot | None = None


def model_info_from(row: Any) -> ModelInfo:
    """What chat reads of a registry row (`inference.LanguageModel`)."""
    return ModelInfo(
        name=row.name,
        queue=row.queue,
        context_length=row.context_length,
        max_output_tokens=row.max_output_tokens,
        default_max_tokens=row.default_max_tokens,
    )


def _read() -> _Snapshot:
    language_model = apps.get_model("inference", "LanguageModel")
    rows = language_model.objects.filter(enabled=True).order_by("name")
    models: dict[str, ModelInfo] = {}
    default = None
    for row in rows:
        models[row.name] = model_info_from(row)
        if row.is_default and default is None:
            default = row.name
    serving: dict[str, list[dict[str, Any]]] = {}
    versions = apps.get_model("inference", "ModelVersion").objects.filter(
        state__in=SERVING_STATES, model__enabled=True
    )
    for version in versions.order_by("pk").values(
        "id", "label", "state", "canary_share", "model__name"
    ):
        name = version.pop("model__name")
        serving.setdefault(name, []).append(version)
    return _Snapshot(
        models=models,
        default=default or next(iter(models), None),
        serving={name: tuple(rows) for name, rows in serving.items()},
        read_at=time.monotonic(),
    )


def _current() -> _Snapshot:
    global _snapshot
    found = _snapshot
    if found is None or time.monotonic() - found.read_at >= settings.CHAT_CATALOG_SECONDS:
        with _lock:  # one reader refreshes; the others wait for it rather than query too
            found = _snapshot
            if found is None or time.monotonic() - found.read_at >= settings.CHAT_CATALOG_SECONDS:
                found = _snapshot = _read()
    return found


def forget(*_: Any, **__: Any) -> None:
    """Drop this process's snapshot: the next read queries the registry. A signal receiver
    (a model or version saved or deleted here) and for tests."""
    global _snapshot
    _snapshot = None


def model_info_get(*, name: str | None) -> ModelInfo | None:
    """The enabled model called `name` (the default model when `name` is None), else None."""
    snapshot = _current()
    if name is None:
        name = snapshot.default
    return snapshot.models.get(name) if name else None


def serving_versions(*, model_name: str) -> list[dict[str, Any]]:
    """The enabled model's active and canary versions (`id`, `label`, `state`,
    `canary_share`); empty for a model with no versions, or none enabled by that name."""
    return [dict(row) for row in _current().serving.get(model_name, ())]
