from __future__ import annotations

from django.urls import URLPattern, path

from accounts import api

app_name = "accounts"

urlpatterns: list[URLPattern] = [
    path("register", api.register, name="register"),
    path("verify-email", api.verify_email, name="verify-email"),
    path("login", api.session_login, name="login"),
    path("logout", api.session_logout, name="logout"),
    path("me", api.me, name="me"),
    path("csrf", api.csrf, name="csrf"),
    path("token", api.token, name="token"),
]
