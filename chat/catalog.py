"""What chat needs to know about models, without importing `inference`.

The model registry lives in `inference` (which depends on `chat`). To keep the dependency
one-way, chat reads the registry through Django's app registry by label, the same mechanism
Django uses for swappable models, and only the few fields it needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    queue: str
    context_length: int
    max_output_tokens: int
    default_max_tokens: int = 512  # the worker's max_tokens when a request sets none


def model_info_get(*, name: str | None) -> ModelInfo | None:
    """The enabled model called `name` (the default model when `name` is None), else None."""
    language_model = apps.get_model("inference", "LanguageModel")
    enabled = language_model.objects.filter(enabled=True)
    row = (
        enabled.filter(name=name).first()
        if name
        else enabled.filter(is_default=True).first() or enabled.order_by("name").first()
    )
    if row is None:
        return None
    return ModelInfo(
        name=row.name,
        queue=row.queue,
        context_length=row.context_length,
        max_output_tokens=row.max_output_tokens,
        default_max_tokens=row.default_max_tokens,
    )
