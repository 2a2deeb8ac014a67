"""URLs for the accounts tests: the real accounts API, and probe views that echo the user."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, URLResolver, include, path

from accounts.decorators import login_required_api
from config.errors import api_view


@api_view("GET", "POST")
@login_required_api
def api_whoami(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"email": request.user.email})  # type: ignore[union-attr]


def plain_whoami(request: HttpRequest) -> HttpResponse:
    user = request.user
    return JsonResponse({"email": user.email if user.is_authenticated else None})


urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/", admin.site.urls),
    path("api/auth/", include("accounts.urls")),
    path("api/test/whoami", api_whoami),
    path("v1/test/whoami", api_whoami),
    path("plain/whoami", plain_whoami),
]
