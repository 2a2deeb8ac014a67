"""`/admin/dashboard/`: the staff dashboard, a page inside the admin's look (its login, its
second factor, its staff check: `AdminSite.admin_view`). The page is a template and a script
(staff/static/staff/dashboard.js) that draws `GET /api/admin/stats` and the live generations
of `GET /api/admin/generations` with Chart.js, served from this origin, and refreshes them in
place; so the page shows exactly what the staff API answers."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

# How often the page reads the API again.
DASHBOARD_REFRESH_SECONDS = 5


def dashboard(request: HttpRequest) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "refresh_seconds": DASHBOARD_REFRESH_SECONDS,
    }
    return TemplateResponse(request, "admin/staff/dashboard.html", context)


dashboard_view = admin.site.admin_view(dashboard)
