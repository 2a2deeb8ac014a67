from __future__ import annotations

from django.urls import URLPattern, path

from chat import api, schema_api

urlpatterns: list[URLPattern] = [
    path("conversations", api.conversations, name="conversations"),
    path("conversations/<str:conversation_id>", api.conversation_detail, name="conversation"),
    path(
        "conversations/<str:conversation_id>/export",
        api.conversation_export,
        name="conversation-export",
    ),
    path("messages/<str:message_id>/feedback", api.message_feedback, name="message-feedback"),
    path("protocol/schema.json", schema_api.protocol_schema, name="protocol-schema"),
]
