from __future__ import annotations

from django.urls import URLPattern, path

from staff import api

app_name = "staff"

urlpatterns: list[URLPattern] = [
    path("generations", api.generations, name="generations"),
    path("generations/<str:generation_id>/stop", api.generation_stop, name="generation-stop"),
    path("users", api.users, name="users"),
    path("users/<int:user_id>", api.user_detail, name="user"),
    path("plans", api.plans, name="plans"),
    path("usage", api.usage, name="usage"),
    path("stats", api.dashboard_stats, name="stats"),
]
