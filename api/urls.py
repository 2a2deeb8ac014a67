from __future__ import annotations

from django.urls import URLPattern, path

from api import keys_api, usage_api

app_name = "api"

urlpatterns: list[URLPattern] = [
    path("keys", keys_api.keys, name="keys"),
    path("keys/<int:key_id>", keys_api.key_detail, name="key"),
    path("usage", usage_api.usage, name="usage"),
]
