"""The admin site: the API's login throttle, and TOTP two-factor for staff (django-otp).

- Failed admin logins count exactly like failed API logins (accounts/throttle.py: per email and
  address, per email, per address); while blocked, the password is not checked.
- A staff member with a confirmed TOTP device always needs its code to sign in. With
  `ADMIN_REQUIRE_2FA` (on by default in production) staff without a device cannot use the admin
  at all: `python manage.py otp_enroll EMAIL` gives them one.
- Its URL prefix is `ADMIN_URL` (config/urls.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.admin import AdminSite
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django_otp import devices_for_user, user_has_device
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.models import Device

from accounts.throttle import (
    client_ip,
    login_failure_record,
    login_failures_clear,
    login_throttle_check,
)
from config.errors import ApiError

# Refusals that are steps of a sign-in, not failures: the code is still to be typed, or a
# device to be chosen. Every other refusal (wrong password, wrong code, a device that django-otp
# holds back after wrong codes) counts as a failed login.
_NOT_FAILURES = {
    "token_required",
    "device_required",
    "challenge_message",
    "not_interactive",
    "challenge_exception",
}


class AdminLoginForm(OTPAdminAuthenticationForm):
    """Django-otp's admin login form behind the API's login throttle; the code is asked of
    staff who have a device (of every staff member when 2FA is required)."""

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username") or ""
        ip = client_ip(self.request.META) if self.request is not None else "unknown"
        try:
            login_throttle_check(email=email, ip=ip)
        except ApiError as error:
            raise ValidationError(error.message, code="rate_limited") from None
        try:
            cleaned = super().clean()
        except ValidationError as error:
            if not {e.code for e in error.error_list} <= _NOT_FAILURES:
                login_failure_record(email=email, ip=ip)
            raise
        login_failures_clear(email=email, ip=ip)
        return cleaned

    def _chosen_device(self, user: Any) -> Device | None:
        # Most people have one authenticator: use it without asking which (django-otp asks,
        # so that a wrong code is not held against every device of the person).
        chosen = super()._chosen_device(user)
        if chosen is None and not self.cleaned_data.get("otp_device"):
            devices = list(devices_for_user(user))
            if len(devices) == 1:
                return devices[0]
        return chosen

    def clean_otp(self, user: Any) -> None:
        if user is not None and not settings.ADMIN_REQUIRE_2FA and not user_has_device(user):
            return  # 2FA optional, and this person has not set it up
        super().clean_otp(user)


class ChatAdminSite(OTPAdminSite):
    """The project's admin site (`admin.site`, through accounts.admin_apps.AdminConfig)."""

    login_form = AdminLoginForm

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def has_permission(self, request: HttpRequest) -> bool:
        if not AdminSite.has_permission(self, request):
            return False
        user: Any = request.user
        if user.is_verified():
            return True
        # Unverified: enough only while 2FA is optional and this person has no device (a
        # device's owner who signed in without its code, e.g. through the API's session login,
        # does not get the admin).
        return not settings.ADMIN_REQUIRE_2FA and not user_has_device(user)
