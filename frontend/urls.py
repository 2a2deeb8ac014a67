"""The browser app's pages. Mounted last in config/urls.py, so API, admin, health and static
paths match first; only the client's own routes reach the fallback."""

from __future__ import annotations

from django.urls import path, re_path

from frontend.views import app_shell

urlpatterns = [
    path("", app_shell, name="frontend-app"),
    # Client routes (/c/<id>, /login, /register, /usage). Paths that belong to the server are
    # excluded so an unknown /api/... URL still answers 404 instead of the app's HTML.
    re_path(
        r"^(?!api/|ws/|admin/|static/|healthz|readyz)(?P<path>.+)$",
        app_shell,
        name="frontend-route",
    ),
]
