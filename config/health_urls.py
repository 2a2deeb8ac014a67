from __future__ import annotations

from django.urls import path

from config.health import healthz, readyz

urlpatterns = [path("healthz", healthz), path("readyz", readyz)]
