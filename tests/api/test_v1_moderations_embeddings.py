"""`/v1/moderations` (the platform's pipeline in OpenAI's shape) and `/v1/embeddings` (the
MiniLM model the semantic check ships), in process, with the real moderation checks."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from api.models import ApiKey
from api.v1.moderations import OPENAI_CATEGORIES
from moderation.models import ModerationEvent

pytestmark = pytest.mark.django_db(transaction=True)


async def post(raw: str, path: str, body: Any) -> Any:
    return await AsyncClient().post(
        path,
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )


@pytest.fixture
async def raw_key(chat_env: Any, make_key: Callable[..., tuple[str, ApiKey]]) -> str:
    raw, _ = await sync_to_async(make_key)()
    return raw


async def test_moderations_answer_in_openais_shape_and_record_nothing(raw_key: str) -> None:
    response = await post(
        raw_key,
        "/v1/moderations",
        {"input": ["What a lovely morning for a walk.", "I want to kill myself tonight"]},
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"].startswith("modr-") and body["model"]
    benign, harmful = body["results"]
    assert benign["flagged"] is False and not any(benign["categories"].values())
    assert harmful["flagged"] is True and any(harmful["categories"].values())
    for result in body["results"]:
        assert set(OPENAI_CATEGORIES) <= set(result["categories"])
        assert set(result["categories"]) == set(result["category_scores"])
    assert await sync_to_async(ModerationEvent.objects.count)() == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"input": []}, {"input": [1]}, {"input": "x", "extra": 1}],
    ids=["none", "empty", "not-text", "unknown-field"],
)
async def test_moderations_refuse_invalid_input(raw_key: str, body: dict[str, Any]) -> None:
    response = await post(raw_key, "/v1/moderations", body)
    assert response.status_code == 400 and response.json()["error"]["param"]


async def test_embeddings_are_unit_vectors_that_place_similar_texts_closer(raw_key: str) -> None:
    texts = ["How do I bake bread?", "A recipe for baking a loaf of bread", "Tax law in Peru"]
    response = await post(raw_key, "/v1/embeddings", {"model": "all-minilm-l6-v2", "input": texts})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "list" and body["model"] == "all-minilm-l6-v2"
    assert [item["index"] for item in body["data"]] == [0, 1, 2]
    vectors = np.array([item["embedding"] for item in body["data"]])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0

    encoded = await post(
        raw_key,
        "/v1/embeddings",
        {"model": "all-minilm-l6-v2", "input": texts[0], "encoding_format": "base64"},
    )
    decoded = np.frombuffer(base64.b64decode(encoded.json()["data"][0]["embedding"]), "<f4")
    assert np.allclose(decoded, vectors[0], atol=1e-5)


async def test_embeddings_name_their_one_model_and_need_their_scope(
    chat_env: Any, make_key: Callable[..., tuple[str, ApiKey]]
) -> None:
    raw, _ = await sync_to_async(make_key)()
    chat_only, _ = await sync_to_async(make_key)(scopes=["chat"])
    wrong = await post(raw, "/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"})
    unscoped = await post(chat_only, "/v1/embeddings", {"model": "all-minilm-l6-v2", "input": "x"})
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "model_not_found"
    assert unscoped.status_code == 403
