"""The routing policy and its routes in the admin (real PostgreSQL, as migrated): the seeded
policy and routes, an edit through the admin's form that the router reads, and the checks on
what an admin may write. And the static MiniLM table's arithmetic, on a stand-in encoder."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.plans import PlanLimits
from chat import model_router
from chat.route_embedding import StaticMiniLM, build_table
from inference.models import LanguageModel, Route, RoutingPolicy, UsageRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    admin = get_user_model().objects.create_superuser("router-admin@example.org", "pw")
    client = Client()
    client.force_login(admin)
    return client


def test_the_migration_seeds_a_cheapest_first_policy_and_three_routes() -> None:
    assert RoutingPolicy.objects.get().strategy == "cheapest"
    assert dict(Route.objects.values_list("name", "model__name")) == {
        "small-talk": "smollm2-135m",
        "knowledge": "gemma3-270m",
        "continuation": "gemma3-270m",
    }


def test_an_admin_switches_the_policy_and_edits_a_route_and_the_router_follows(
    admin_client: Client,
) -> None:
    LanguageModel.objects.filter(name="gemma3-270m").update(enabled=True)
    changed = admin_client.post(
        "/admin/inference/routingpolicy/1/change/",
        {"strategy": "by_task", "fallback": "fastest", "min_similarity": "0.5"},
    )
    route = Route.objects.get(name="small-talk")
    edited = admin_client.post(
        f"/admin/inference/route/{route.pk}/change/",
        {
            "name": "small-talk",
            "model": LanguageModel.objects.get(name="gemma3-270m").pk,
            "examples": "hello\nhow are you?",
            "enabled": "on",
        },
    )
    model_router.forget()
    policy = model_router.config().policy

    assert changed.status_code == edited.status_code == 302
    assert (policy.strategy, policy.fallback, policy.min_similarity) == ("by_task", "fastest", 0.5)
    assert model_router.RouteSpec("small-talk", "gemma3-270m", ("hello", "how are you?")) in (
        policy.routes
    )
    assert admin_client.get("/admin/inference/routingpolicy/add/").status_code == 403


@pytest.mark.parametrize(
    ("examples", "error"),
    [
        ("   \n  ", "This field is required"),
        ("x" * 301, "at most 300 characters"),
        ("hello\n" * 201, "at most 200 examples"),
    ],
)
def test_a_route_without_usable_examples_is_refused(
    admin_client: Client, examples: str, error: str
) -> None:
    response = admin_client.post(
        "/admin/inference/route/add/",
        {
            "name": "empty",
            "model": LanguageModel.objects.get(name="smollm2-135m").pk,
            "examples": examples,
            "enabled": "on",
        },
    )

    assert response.status_code == 200 and error in response.content.decode()
    assert not Route.objects.filter(name="empty").exists()


def test_routes_to_a_disabled_model_are_left_out_of_the_policy() -> None:
    LanguageModel.objects.filter(name="gemma3-270m").update(enabled=False)
    model_router.forget()
    assert [r.name for r in model_router.config().policy.routes] == ["small-talk"]


def test_auto_with_no_model_in_the_plan_is_not_found() -> None:
    plan = PlanLimits("none", 0, 0, 0, 0, None, ("not-a-model",), 5)
    model_router.forget()
    with pytest.raises(model_router.ChatError) as refused:
        model_router.route(plan=plan, texts=["hi"], message="hi")
    assert refused.value.code == "not_found"


def test_fastest_measures_tokens_per_second_over_recent_answers() -> None:
    user = get_user_model().objects.create_user("speed@example.org", "pw")
    for model, tokens, ms in [("slow", 100, 10_000), ("slow", 100, 10_000), ("quick", 300, 3_000)]:
        UsageRecord.objects.create(
            generation_id=uuid.uuid4().hex,
            user=user,
            model=model,
            completion_tokens=tokens,
            duration_ms=ms,
            finish_reason="stop",
        )
    model_router.forget()

    speeds = model_router._measured_speeds(["slow", "quick", "unmeasured"])

    assert speeds == {"slow": 10.0, "quick": 100.0}


class StandIn:
    """Four word pieces; the vector of piece i is 2 e_i."""

    vocabulary_size = 4

    def vocabulary_vectors(self, start: int, stop: int) -> np.ndarray:
        rows = np.zeros((stop - start, 384), dtype=np.float32)
        for row, piece in enumerate(range(start, stop)):
            rows[row, piece] = 2.0
        return rows

    def token_ids(self, text: str, *, max_tokens: int = 128) -> list[int]:
        return [int(ch) for ch in text if ch.isdigit()][:max_tokens]


def test_the_static_table_embeds_a_text_as_the_normalised_mean_of_its_pieces(
    tmp_path: Path, settings: Any
) -> None:
    encoder: Any = StandIn()
    path = tmp_path / "table.npy"
    table = build_table(encoder, path)
    static = StaticMiniLM(encoder, np.load(path))

    vectors = static.encode(["0 1", "2", "no pieces"])

    assert table.shape == (4, 384) and table.dtype == np.float16
    assert np.allclose(vectors[0][:2], [2**-0.5, 2**-0.5]) and np.allclose(vectors[1][2], 1.0)
    assert not vectors[2].any()
