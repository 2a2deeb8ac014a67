"""The staff console's pages under ADMIN_URL (before the admin's own URLs in config/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, path

from staff.dashboard import dashboard_view

urlpatterns: list[URLPattern] = [
    path("dashboard/", dashboard_view, name="staff-dashboard"),
]
