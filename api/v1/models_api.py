"""`GET /v1/models` and `GET /v1/models/{id}`: the enabled models, in OpenAI's shape."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse

from api.models import SCOPE_MODELS
from api.v1.auth import key_for
from api.v1.errors import OpenAIError, error_response
from inference.models import LanguageModel
from inference.selectors import model_get_enabled, model_list_enabled

OWNED_BY = "platform"


def model_json(model: LanguageModel) -> dict[str, Any]:
    return {
        "id": model.name,
        "object": "model",
        "created": int(model.created_at.timestamp()),
        "owned_by": OWNED_BY,
        # Beyond OpenAI's fields, what a client needs to size its requests.
        "context_length": model.context_length,
        "max_output_tokens": model.max_output_tokens,
    }


def _method_not_allowed() -> HttpResponse:
    response = error_response(OpenAIError(405, "Use GET.", code="method_not_allowed"))
    response["Allow"] = "GET"
    return response


async def model_list(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed()
    try:
        await key_for(request, scope=SCOPE_MODELS)
    except OpenAIError as error:
        return error_response(error)
    models = await database_sync_to_async(model_list_enabled)()
    return JsonResponse({"object": "list", "data": [model_json(model) for model in models]})


async def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed()
    try:
        await key_for(request, scope=SCOPE_MODELS)
    except OpenAIError as error:
        return error_response(error)
    found = await database_sync_to_async(model_get_enabled)(name=model_id)
    if found is None:
        return error_response(
            OpenAIError(
                404,
                f"The model '{model_id}' does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
        )
    return JsonResponse(model_json(found))
