from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config.metrics_api import metrics_view

urlpatterns = [
    # Before the admin's own URLs, which would take "dashboard/" for an app label.
    path(settings.ADMIN_URL, include("staff.admin_urls")),
    path(settings.ADMIN_URL, admin.site.urls),
    path("api/auth/", include("accounts.urls")),
    path("api/admin/", include("staff.urls")),
    path("api/", include("chat.urls")),
    path("api/", include("inference.urls")),
    path("api/", include("api.urls")),
    path("v1/", include("api.v1.urls")),
    path("", include("config.health_urls")),
    path("metrics", metrics_view, name="metrics"),
    path("", include("frontend.urls")),
]
