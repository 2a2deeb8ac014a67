"""`GET /v1/models` and `GET /v1/models/{id}`: the enabled models the key owner's plan allows,
in OpenAI's shape. A model outside the plan is not listed, and asking for it is 404
`model_not_found`, as for a model that does not exist (OpenAI answers both alike).

`auto` (chat/model_router.py: the router picks one of the plan's models per request) is listed
after them when the plan allows two models or more (`inference.selectors.auto_offered`, the
rule of `/api/models` and of the browser's picker), as a model object whose context and
output limits are the largest of the models it chooses among."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse

from api.models import SCOPE_MODELS
from api.v1.auth import key_for, key_plan
from api.v1.errors import OpenAIError, error_response, model_not_found
from chat.model_router import AUTO
from inference.models import LanguageModel
from inference.selectors import auto_offered, model_get_enabled, model_list_allowed

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


def auto_json(models: list[LanguageModel]) -> dict[str, Any]:
    """`auto` as an OpenAI model object, over the models the router may choose (not empty)."""
    return {
        "id": AUTO,
        "object": "model",
        "created": min(int(model.created_at.timestamp()) for model in models),
        "owned_by": OWNED_BY,
        "context_length": max(model.context_length for model in models),
        "max_output_tokens": max(model.max_output_tokens for model in models),
        "routes_to": [model.name for model in models],
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
    models = await database_sync_to_async(model_list_allowed)(plan=key_plan(key))
    data = [model_json(model) for model in models]
    if auto_offered(models):
        data.append(auto_json(models))
    return JsonResponse({"object": "list", "data": data})


async def model_detail(request: HttpRequest, model_id: str) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed()
    try:
        key = await key_for(request, scope=SCOPE_MODELS)
    except OpenAIError as error:
        return error_response(error)
    if model_id == AUTO:
        models = await database_sync_to_async(model_list_allowed)(plan=key_plan(key))
        if not auto_offered(models):
            return error_response(model_not_found(model_id))
        return JsonResponse(auto_json(models))
    found = await database_sync_to_async(model_get_enabled)(name=model_id)
    if found is None or not key_plan(key).allows_model(found.name):
        return error_response(model_not_found(model_id))
    return JsonResponse(model_json(found))
