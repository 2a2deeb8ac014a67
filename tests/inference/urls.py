"""Only the inference API, so these tests do not depend on other apps' URLs."""

from django.urls import include, path

urlpatterns = [path("api/", include("inference.urls"))]
