from __future__ import annotations

from django.urls import path

from inference import api

urlpatterns = [
    path("models", api.model_list, name="model-list"),
]
