"""Versions in the admin: the state changes are actions, rollback is one action, and each is
recorded in the audit log with every version it changed."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client

from accounts.models import User
from inference.models import LanguageModel, ModelVersion
from staff.models import AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture(autouse=True)
def model() -> LanguageModel:
    """The seeded model and its first version (a transactional test starts from empty tables)."""
    model, _ = LanguageModel.objects.get_or_create(
        name="smollm2-135m",
        defaults={"display_name": "SmolLM2", "weights": "smollm2-135m-instruct"},
    )
    ModelVersion.objects.get_or_create(
        model=model, label="v1", defaults={"weights": model.weights, "state": "active"}
    )
    return model


def act(client: Client, url: str, action: str, pks: list[int], **extra: Any) -> Any:
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks], "index": 0, **extra}
    return client.post(url, data, follow=True)


def test_canary_promote_and_one_action_rollback_through_the_admin(admin_client: Client) -> None:
    model = LanguageModel.objects.get(name="smollm2-135m")
    v1 = model.versions.get(label="v1")
    v2 = ModelVersion.objects.create(model=model, label="v2", weights="/models/v2")
    url = "/admin/inference/modelversion/"

    refused = act(admin_client, url, "canary_start", [v2.pk])  # no share given
    assert "Give a canary share" in refused.content.decode()
    act(admin_client, url, "canary_start", [v2.pk], share="20")
    v2.refresh_from_db()
    assert (v2.state, v2.canary_share) == ("canary", 20)
    act(admin_client, url, "promote", [v2.pk])
    assert ModelVersion.objects.get(pk=v2.pk).state == "active"

    response = act(admin_client, "/admin/inference/languagemodel/", "rollback_version", [model.pk])

    assert response.status_code == 200
    assert "v1 is active again, v2 retired" in response.content.decode()
    assert ModelVersion.objects.get(pk=v1.pk).state == "active"
    assert ModelVersion.objects.get(pk=v2.pk).state == "retired"
    entries = AuditEntry.objects.filter(action="action:rollback_version")
    by_target = {(e.target_type, e.target_id): e for e in entries}
    # Both versions the rollback changed are in the log, before and after.
    restored = by_target[("inference.modelversion", str(v1.pk))]
    retired = by_target[("inference.modelversion", str(v2.pk))]
    assert (restored.before["state"], restored.after["state"]) == ("retired", "active")
    assert (retired.before["state"], retired.after["state"]) == ("active", "retired")
    model_entry = by_target[("inference.languagemodel", str(model.pk))]
    assert model_entry.after["weights"] == v1.weights


def test_an_impossible_change_is_shown_and_changes_nothing(admin_client: Client) -> None:
    model = LanguageModel.objects.get(name="smollm2-135m")
    url = "/admin/inference/modelversion/"

    response = act(admin_client, url, "rollback", [model.versions.get(label="v1").pk])

    assert "no previous version" in response.content.decode()
    assert not AuditEntry.objects.filter(action="action:rollback").exists()


def test_a_serving_versions_configuration_is_read_only(admin_client: Client) -> None:
    model = LanguageModel.objects.get(name="smollm2-135m")
    v1 = model.versions.get(label="v1")
    v2 = ModelVersion.objects.create(model=model, label="v2", weights="/models/v2")

    active_form = admin_client.get(f"/admin/inference/modelversion/{v1.pk}/change/")
    draft_form = admin_client.get(f"/admin/inference/modelversion/{v2.pk}/change/")

    assert "weights" not in active_form.context["adminform"].form.fields
    assert "weights" in draft_form.context["adminform"].form.fields
    assert "state" not in draft_form.context["adminform"].form.fields


def test_the_version_list_shows_each_versions_figures(admin_client: Client) -> None:
    from inference.models import UsageRecord

    v1 = ModelVersion.objects.get(label="v1")
    for number, rating in enumerate((1, 1, -1, None)):
        UsageRecord.objects.create(
            generation_id=f"g{number}",
            model="smollm2-135m",
            model_version_id=v1.pk,
            model_version="v1",
            completion_tokens=21,
            time_to_first_token_ms=250,
            duration_ms=1250,
            finish_reason="moderated" if number == 3 else "stop",
            feedback_rating=rating,
        )

    page = admin_client.get("/admin/inference/modelversion/").content.decode()

    for shown in ("250", "20.0", "25.0%", "67% (3)"):
        assert shown in page, shown
