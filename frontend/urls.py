"""The browser app's pages. Mounted last in config/urls.py, so API, admin, health and static
paths match first; only the client's own routes reach the fallback."""

from __future__ import annotations

import re

from django.conf import settings
from django.urls import path, re_path

from frontend.views import app_shell

# Paths that belong to the server, so that an unknown /api/... URL still answers 404 instead of
# the app's HTML. The admin's prefix is a setting (ADMIN_URL).
SERVER_PATHS = ["api/", "v1/", "ws/", re.escape(settings.ADMIN_URL), "static/", "healthz", "readyz"]

urlpatterns = [
    path("", app_shell, name="frontend-app"),
    # Client routes (/c/<id>, /login, /register, /usage).
    re_path(
        rf"^(?!{'|'.join(SERVER_PATHS)})(?P<path>.+)$",
        app_shell,
        name="frontend-route",
    ),
]
