"""Reads of the model registry."""

from __future__ import annotations

from inference.models import LanguageModel


def model_get_enabled(*, name: str | None) -> LanguageModel | None:
    """The enabled model called `name`, or the default model when `name` is None."""
    models = LanguageModel.objects.filter(enabled=True)
    if name is None:
        return models.filter(is_default=True).first()
    return models.filter(name=name).first()


def model_list_enabled() -> list[LanguageModel]:
    """Every enabled model, the default first, then by name."""
    return list(LanguageModel.objects.filter(enabled=True).order_by("-is_default", "name"))
