"""django.contrib.admin with the project's site (login throttle, TOTP two-factor: see
accounts/admin_site.py). In INSTALLED_APPS in place of "django.contrib.admin"."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    default_site = "accounts.admin_site.ChatAdminSite"
