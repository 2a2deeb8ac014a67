"""The model registry in PostgreSQL: the seeded default model, selectors and GET /api/models."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError
from django.test import Client
from pytest_django import Settings

from accounts.models import User
from inference.models import LanguageModel
from inference.selectors import model_get_enabled, model_list_enabled, model_list_served

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def inference_urls(settings: Settings) -> None:
    settings.ROOT_URLCONF = "tests.inference.urls"


def add_model(name: str, **fields: object) -> LanguageModel:
    fields.setdefault("weights", f"/models/{name}")
    return LanguageModel.objects.create(name=name, display_name=name.title(), **fields)


def test_the_migration_seeds_the_default_model() -> None:
    model = model_get_enabled(name=None)

    assert model is not None
    assert model.name == "smollm2-135m"
    assert model.display_name == "SmolLM2 135M Instruct"
    assert model.weights == "smollm2-135m-instruct"
    assert model.context_length == 8192
    assert model.default_max_tokens == 512
    # Min-p, not top-p: top-p < 1 sorts the vocabulary per token (migration 0004).
    assert (model.default_top_p, model.default_min_p) == (1.0, 0.05)
    assert model.queue == "inference.smollm2-135m"
    assert model.price_prompt_per_1k == Decimal("0.0001")
    assert model.is_default and model.enabled


def test_weights_relative_to_the_model_dir_resolve_under_it(settings: Settings) -> None:
    settings.INFERENCE_MODEL_DIR = "/srv/models"
    model = model_get_enabled(name="smollm2-135m")
    assert model is not None

    assert model.weights_location == "/srv/models/smollm2-135m-instruct"
    assert model.tokenizer_location == model.weights_location
    assert add_model("hub", weights="org/some-model").weights_location == "org/some-model"
    assert add_model("abs", weights="/opt/m").weights_location == "/opt/m"


def test_a_new_model_gets_its_own_queue_by_default() -> None:
    assert add_model("tiny").queue == "inference.tiny"


def test_disabled_models_are_neither_found_nor_listed() -> None:
    add_model("off", enabled=False)
    add_model("on")

    assert model_get_enabled(name="off") is None
    assert model_get_enabled(name="on") is not None
    assert [m.name for m in model_list_enabled()] == ["smollm2-135m", "on"]


def test_only_one_model_can_be_the_default() -> None:
    with pytest.raises(IntegrityError):
        add_model("second-default", is_default=True)


def test_models_api_requires_authentication(client: Client) -> None:
    response = client.get("/api/models")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_models_api_lists_enabled_models_default_first(client: Client) -> None:
    add_model("alpha", description="A", context_length=4096, max_output_tokens=1000)
    add_model("hidden", enabled=False)
    client.force_login(User.objects.create_user("m@example.com", "pw-123456789"))

    response = client.get("/api/models")

    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    assert [m["name"] for m in body["results"]] == ["smollm2-135m", "alpha"]
    assert body["results"][1] == {
        "name": "alpha",
        "display_name": "Alpha",
        "description": "A",
        "context_length": 4096,
        "max_output_tokens": 1000,
        "default": False,
    }
    assert body["results"][0]["default"] is True


def test_models_api_refuses_writes(client: Client) -> None:
    client.force_login(User.objects.create_user("w@example.com", "pw-123456789"))

    assert client.post("/api/models").status_code == 405


@pytest.mark.django_db
def test_the_served_models_are_the_default_one_unless_names_are_given() -> None:
    add_model("beta", enabled=True)
    add_model("off", enabled=False)

    assert [m.name for m in model_list_served(names="")] == ["smollm2-135m"]
    assert [m.name for m in model_list_served(names=" beta, smollm2-135m,beta ,off")] == [
        "beta",
        "smollm2-135m",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("raw", "saved"),
    [
        ('["\\nQ:", "\\nA:"]', ["\nQ:", "\nA:"]),
        ("[]", []),
        ('"\\nUser:"', None),  # not a list
        ('["' + "x" * 33 + '"]', None),  # too long
        ('["a", "b", "c", "d", "e"]', None),  # too many
        ('[""]', None),  # empty
    ],
)
def test_the_admin_form_accepts_only_a_short_list_of_stop_sequences(
    raw: str, saved: list[str] | None, rf: Any, admin_user: User
) -> None:
    from django.contrib import admin
    from django.forms.models import model_to_dict

    gemma = LanguageModel.objects.get(name="gemma3-270m")
    request = rf.get("/")
    request.user = admin_user
    form_class = admin.site._registry[LanguageModel].get_form(request, gemma)
    data = {k: v for k, v in model_to_dict(gemma).items() if v is not None}
    data["stop_sequences"] = raw

    form = form_class(data=data, instance=gemma)

    assert form.is_valid() == (saved is not None), form.errors
    if saved is not None:
        form.save()
    gemma.refresh_from_db()
    assert gemma.stop_sequences == (saved if saved is not None else ["\nUser:", "\nAssistant:"])
