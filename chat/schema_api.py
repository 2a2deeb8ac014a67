"""`GET /api/protocol/schema.json`: the websocket protocol's JSON Schema, a public contract.

Public on purpose: it describes the wire format only, and client generators (mobile build
pipelines) fetch it without credentials.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import cache_control

from chat.protocol import json_schema
from config.errors import api_view


@cache
def _schema() -> dict[str, Any]:
    # Generated once per process: the models cannot change while it runs.
    return json_schema()


@api_view("GET")
@cache_control(public=True, max_age=3600)
def protocol_schema(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_schema())
