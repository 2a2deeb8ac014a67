"""`/api/keys`: a user manages their API keys, with a session (and its CSRF token) or an
account bearer token, like every other `/api/` endpoint. The raw key is in the creation's
response only."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from accounts.decorators import login_required_api
from api.models import ApiKey
from api.selectors import api_key_list, api_key_usage
from api.services import api_key_create, api_key_revoke
from config.errors import NotFound, api_view, json_body


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


NO_USAGE = {"generations": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0}


def key_json(key: ApiKey, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {
        "id": key.pk,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "store_conversations": key.store_conversations,
        "created_at": _iso(key.created_at),
        "expires_at": _iso(key.expires_at),
        "last_used_at": _iso(key.last_used_at),
    }
    if usage is not None:
        body["usage"] = usage
    return body


@api_view("GET", "POST")
@login_required_api
def keys(request: HttpRequest) -> HttpResponse:
    user_id = int(request.user.pk or 0)  # authenticated: login_required_api
    if request.method == "GET":
        usage = api_key_usage(user_id=user_id)
        results = [
            key_json(key, usage.get(key.pk, NO_USAGE)) for key in api_key_list(user_id=user_id)
        ]
        return JsonResponse({"results": results, "next_cursor": None})
    data = json_body(request)
    raw, key = api_key_create(
        user=request.user,  # type: ignore[arg-type]
        name=data.get("name"),
        scopes=data.get("scopes"),
        expires_in_days=data.get("expires_in_days"),
        store_conversations=data.get("store_conversations", False),
    )
    response = JsonResponse({**key_json(key), "key": raw}, status=201)
    response["Cache-Control"] = "no-store"
    return response


@api_view("DELETE")
@login_required_api
def key_detail(request: HttpRequest, key_id: int) -> HttpResponse:
    if not api_key_revoke(user_id=int(request.user.pk or 0), key_id=key_id):
        raise NotFound("key")
    return HttpResponse(status=204)
