"""The web process's snapshot of the model registry (chat/catalog.py): admission reads the
enabled models and their serving versions from it, re-reads it once it is
`CHAT_CATALOG_SECONDS` old, and drops it at once when this process saves or deletes a model
or a version. PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import catalog
from inference import versions as registry
from inference.models import LanguageModel, ModelVersion

pytest_plugins = ["tests.chat.consumer_support"]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cached(settings: Any) -> None:
    settings.CHAT_CATALOG_SECONDS = 60.0


def _queries(read: Any) -> tuple[Any, int]:
    with CaptureQueriesContext(connection) as queries:
        found = read()
    return found, len(queries.captured_queries)


def test_admissions_within_the_interval_read_the_registry_once(
    cached: None, default_model: LanguageModel
) -> None:
    ModelVersion.objects.get_or_create(
        model=default_model, label="v1", defaults={"weights": "w", "state": "active"}
    )
    catalog.forget()

    first, first_queries = _queries(lambda: catalog.model_info_get(name=default_model.name))
    later = [
        _queries(lambda: catalog.serving_versions(model_name=default_model.name)) for _ in range(20)
    ]

    assert first is not None and first.name == default_model.name
    assert first_queries == 2  # the models, then their serving versions
    assert {count for _, count in later} == {0}
    assert [row["label"] for row in later[0][0]] == ["v1"]


def test_a_snapshot_older_than_the_interval_is_read_again(
    settings: Any, default_model: LanguageModel
) -> None:
    settings.CHAT_CATALOG_SECONDS = 0.0
    catalog.model_info_get(name=None)
    LanguageModel.objects.filter(pk=default_model.pk).update(max_output_tokens=77)  # no signal

    found, queries = _queries(lambda: catalog.model_info_get(name=default_model.name))

    assert queries == 2
    assert found is not None and found.max_output_tokens == 77


def test_an_edit_made_elsewhere_shows_only_after_the_interval(
    cached: None, default_model: LanguageModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog.model_info_get(name=None)
    # Another process's edit: no signal reaches this one.
    LanguageModel.objects.filter(pk=default_model.pk).update(enabled=False)
    now = catalog.time.monotonic()

    monkeypatch.setattr(catalog.time, "monotonic", lambda: now + 59.0)
    assert catalog.model_info_get(name=default_model.name) is not None  # still the snapshot
    monkeypatch.setattr(catalog.time, "monotonic", lambda: now + 61.0)
    assert catalog.model_info_get(name=default_model.name) is None


def test_a_save_or_delete_in_this_process_applies_at_once(
    cached: None, default_model: LanguageModel
) -> None:
    ModelVersion.objects.filter(model=default_model).delete()
    assert catalog.serving_versions(model_name=default_model.name) == []

    draft = ModelVersion.objects.create(model=default_model, label="v7", weights="w")
    registry.version_promote(version=draft)
    assert [row["label"] for row in catalog.serving_versions(model_name=default_model.name)] == [
        "v7"
    ]

    default_model.enabled = False
    default_model.save()
    assert catalog.model_info_get(name=default_model.name) is None
    assert catalog.serving_versions(model_name=default_model.name) == []

    default_model.enabled = True
    default_model.save()
    ModelVersion.objects.filter(pk=draft.pk).delete()  # a queryset delete sends post_delete too
    assert catalog.serving_versions(model_name=default_model.name) == []


def test_the_default_is_the_flagged_model_else_the_first_by_name(
    cached: None, default_model: LanguageModel
) -> None:
    LanguageModel.objects.create(name="aaa-model", display_name="A", weights="w", enabled=True)
    assert catalog.model_info_get(name=None).name == default_model.name  # type: ignore[union-attr]

    default_model.is_default = False
    default_model.save()
    assert catalog.model_info_get(name=None).name == "aaa-model"  # type: ignore[union-attr]
    assert catalog.model_info_get(name="no-such-model") is None
