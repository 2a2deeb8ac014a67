"""The OpenAI-compatible API, under `/v1/`."""

from __future__ import annotations

from django.urls import URLPattern, path

from api.v1 import completions, embeddings, models_api, moderations

app_name = "v1"

urlpatterns: list[URLPattern] = [
    path("models", models_api.model_list, name="models"),
    path("models/<str:model_id>", models_api.model_detail, name="model"),
    path("chat/completions", completions.chat_completions, name="chat-completions"),
    path("moderations", moderations.moderations, name="moderations"),
    path("embeddings", embeddings.embeddings, name="embeddings"),
]
