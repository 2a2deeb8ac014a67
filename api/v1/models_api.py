"""`GET /v1/models` and `GET /v1/models/{id}`: the enabled models the key owner's plan allows,
in OpenAI's shape. A model outside the plan is not listed, and asking for it is 404
`model_not_found`, as for a model that does not exist (OpenAI answers both alike)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse

from api.models import SCOPE_MODELS
from api.v1.auth import key_for, key_plan
from api.v1.errors import OpenAIError, error_response, model_not_found
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
        key = await key_for(request, scope=SCOPE_MODELS)
    except OpenAIError as error:
        return error_response(error)
    plan = key_plan(key)
    models = await database_sync_to_async(model_list_enabled)()
    return JsonResponse(
        {
            "object": "list",
            "data": [model_json(model) for model in models if plan.allows_model(model.name)],
        }
    )


async def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed()
    try:
        key = await key_for(request, scope=SCOPE_MODELS)
    except OpenAIError as error:
        return error_response(error)
    found = await database_sync_to_async(model_get_enabled)(name=model_id)
    if found is None or not key_plan(key).allows_model(found.name):
        return error_response(model_not_found(model_id))
    return JsonResponse(model_json(found))
