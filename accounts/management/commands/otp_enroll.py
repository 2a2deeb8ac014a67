"""`python manage.py otp_enroll EMAIL`: a TOTP device for a staff member, for the admin's
two-factor sign-in (accounts/admin_site.py). Prints the otpauth:// URL to add to an
authenticator app (most accept it pasted, or as a QR code made from it)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User, normalize_email


class Command(BaseCommand):
    help = "Give a staff member a TOTP device for the admin's two-factor sign-in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--name", default="authenticator", help="the device's name")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="delete the person's other TOTP devices (a lost phone)",
        )

    def handle(self, *args: Any, email: str, name: str, replace: bool, **options: Any) -> None:
        user = User.objects.filter(email=normalize_email(email)).first()
        if user is None:
            raise CommandError(f"No account has the address {email!r}.")
        if not user.is_staff:
            raise CommandError(f"{user.email} is not staff: the admin's two-factor is for staff.")
        if replace:
            TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(user=user, name=name, confirmed=True)
        self.stdout.write(f"TOTP device {device.name!r} for {user.email}. Add it to an app:")
        self.stdout.write(device.config_url)
