"""The REST reads of the inference app follow the user's plan: `GET /api/models` lists the
models it allows with its output cap, and `GET /api/usage` shows its daily quota."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Plan, User
from accounts.services import token_issue
from inference.models import LanguageModel


@pytest.mark.django_db
def test_the_model_list_and_usage_quota_follow_the_plan() -> None:
    for name in ("alpha", "beta"):
        LanguageModel.objects.create(name=name, display_name=name, weights=name)
    plan = Plan.objects.create(
        name="narrow", allowed_models=["beta"], max_output_tokens=64, daily_messages=7
    )
    raw_token, _ = token_issue(user=User.objects.create_user("e@x.org", plan=plan))
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw_token}"}

    models = Client().get("/api/models", **auth).json()["results"]
    quota = Client().get("/api/usage", **auth).json()["quota"]

    assert [(model["name"], model["max_output_tokens"]) for model in models] == [("beta", 64)]
    assert quota["daily_messages"] == 7
