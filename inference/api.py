"""REST views of the model registry."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from accounts.decorators import login_required_api
from config.api import api_view
from inference.selectors import model_list_enabled


@api_view("GET")
@login_required_api
def model_list(request: HttpRequest) -> JsonResponse:
    results = [
        {
            "name": model.name,
            "display_name": model.display_name,
            "description": model.description,
            "context_length": model.context_length,
            "max_output_tokens": model.max_output_tokens,
            "default": model.is_default,
        }
        for model in model_list_enabled()
    ]
    return JsonResponse({"results": results, "next_cursor": None})
