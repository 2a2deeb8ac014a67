"""`POST /v1/embeddings`: sentence embeddings from the model the semantic moderation check
already ships (all-MiniLM-L6-v2: 384 dimensions, unit length, inputs cut at 128 word pieces)."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from api.models import SCOPE_EMBEDDINGS
from api.v1.auth import key_and_body
from api.v1.errors import OpenAIError, error_response, invalid, model_not_found

MODEL_NAME = "all-minilm-l6-v2"
DIMENSIONS = 384
MAX_INPUTS = 64


def _request(data: dict[str, Any]) -> tuple[list[str], str]:
    for name in data:
        if name not in ("input", "model", "encoding_format", "user", "dimensions"):
            raise invalid(f"Unrecognized request argument supplied: {name}", param=name)
    model = data.get("model")
    if model != MODEL_NAME:
        raise model_not_found(str(model), reason=f"Embeddings use '{MODEL_NAME}'.")
    value = data.get("input")
    texts = [value] if isinstance(value, str) else value
    if (
        not isinstance(texts, list)
        or not 0 < len(texts) <= MAX_INPUTS
        or not all(isinstance(text, str) and text for text in texts)
    ):
        raise invalid(
            f"input: a non-empty string or a list of 1 to {MAX_INPUTS} (token arrays are not "
            "supported)",
            param="input",
        )
    if sum(map(len, texts)) > settings.API_MAX_INPUT_CHARS:
        raise invalid(
            f"input: at most {settings.API_MAX_INPUT_CHARS} characters in all",
            param="input",
            code="string_above_max_length",
        )
    if data.get("dimensions") not in (None, DIMENSIONS):
        raise invalid(f"dimensions: only {DIMENSIONS}", param="dimensions")
    encoding = data.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise invalid("encoding_format: float or base64", param="encoding_format")
    return texts, encoding


def _encode(texts: list[str]) -> tuple[np.ndarray, int]:
    from moderation.checks.embedders import MINILM, MiniLMEncoder, get_embedder

    encoder = get_embedder(MINILM)
    assert isinstance(encoder, MiniLMEncoder)
    vectors = encoder.encode(texts)
    return vectors, sum(encoder.token_count(text) for text in texts)


def _embedding(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return [float(value) for value in vector]


@csrf_exempt  # an API key in a header, never a cookie
async def embeddings(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        response = error_response(OpenAIError(405, "Use POST.", code="method_not_allowed"))
        response["Allow"] = "POST"
        return response
    try:
        _, data = await key_and_body(request, scope=SCOPE_EMBEDDINGS)
        texts, encoding = _request(data)
    except OpenAIError as error:
        return error_response(error)
    vectors, tokens = await sync_to_async(_encode, thread_sensitive=False)(texts)
    return JsonResponse(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index, "embedding": _embedding(vector, encoding)}
                for index, vector in enumerate(vectors)
            ],
            "model": MODEL_NAME,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )
