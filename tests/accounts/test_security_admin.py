"""Issue 15, finding 3: the admin's login is throttled like the API's, staff can (and in
production must) sign in with a TOTP code, and the admin's URL prefix is a setting."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import clear_url_caches
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from pytest_django import Settings

from accounts.models import User
from tests.accounts.conftest import PASSWORD
from tests.accounts.helpers import post_json

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
ADDRESS = "198.51.100.23"


@pytest.fixture(autouse=True)
def limits(settings: Settings) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 60
    settings.ADMIN_REQUIRE_2FA = False


@pytest.fixture
def staff(make_user: Callable[..., User]) -> User:
    return make_user(email="root@example.org", is_staff=True, is_superuser=True)


def device_for(user: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits):06d}"


def admin_login(client: Client, email: str, password: str, otp_token: str = "") -> Any:
    body = {"username": email, "password": password, "otp_token": otp_token, "next": "/admin/"}
    return client.post("/admin/login/", body, REMOTE_ADDR=ADDRESS)


def in_admin(client: Client) -> bool:
    return bool(client.get("/admin/").status_code == 200)


# --- Throttling ------------------------------------------------------------------------------


def test_failed_admin_logins_block_the_right_password_too(staff: User) -> None:
    for _ in range(3):
        admin_login(Client(), staff.email, "guess")
    client = Client()

    response = admin_login(client, staff.email, PASSWORD)

    assert response.status_code == 200  # the form again, with the reason
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert not in_admin(client)


def test_admin_and_api_logins_share_one_count(staff: User) -> None:
    for _ in range(3):
        body = {"email": staff.email, "password": "guess"}
        post_json(Client(), "/api/auth/token", body, REMOTE_ADDR=ADDRESS)
    client = Client()

    admin_login(client, staff.email, PASSWORD)

    assert not in_admin(client)


def test_while_blocked_the_admin_does_not_check_the_password(
    staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        admin_login(Client(), staff.email, "guess")
    checked: list[object] = []
    monkeypatch.setattr(
        "django.contrib.auth.forms.authenticate", lambda *a, **kw: checked.append(a)
    )

    admin_login(Client(), staff.email, PASSWORD)

    assert checked == []


def test_a_successful_admin_login_resets_its_own_count(staff: User) -> None:
    for _ in range(2):
        admin_login(Client(), staff.email, "guess")
    assert admin_login(Client(), staff.email, PASSWORD).status_code == 302
    for _ in range(2):
        admin_login(Client(), staff.email, "guess")
    client = Client()

    admin_login(client, staff.email, PASSWORD)

    assert in_admin(client)


# --- Two-factor ------------------------------------------------------------------------------


def test_staff_with_a_device_need_its_code(staff: User) -> None:
    device = device_for(staff)
    without, wrong, right = Client(), Client(), Client()

    admin_login(without, staff.email, PASSWORD)
    admin_login(right, staff.email, PASSWORD, otp_token=code(device))
    # (After a wrong code django-otp makes the device wait a moment, so the right one goes first.)
    admin_login(wrong, staff.email, PASSWORD, otp_token=str((int(code(device)) + 1) % 1000000))

    assert not in_admin(without)
    assert not in_admin(wrong)
    assert in_admin(right)


def test_wrong_codes_count_as_failed_logins(staff: User) -> None:
    device = device_for(staff)
    wrong = "000000" if code(device) != "000000" else "111111"
    for _ in range(3):
        admin_login(Client(), staff.email, PASSWORD, otp_token=wrong)
    client = Client()

    response = admin_login(client, staff.email, PASSWORD, otp_token=code(device))

    assert "Too many failed sign-in attempts" in response.content.decode()
    assert not in_admin(client)


def test_when_2fa_is_required_staff_without_a_device_are_kept_out(
    staff: User, settings: Settings
) -> None:
    settings.ADMIN_REQUIRE_2FA = True
    client = Client()

    response = admin_login(client, staff.email, PASSWORD)

    assert "OTP token" in response.content.decode()
    assert not in_admin(client)


def test_when_2fa_is_required_a_session_without_the_code_is_not_enough(
    staff: User, settings: Settings
) -> None:
    settings.ADMIN_REQUIRE_2FA = True
    device_for(staff)
    client = Client()
    client.force_login(staff)  # e.g. the browser app's session login, which asks no code

    assert not in_admin(client)


def test_when_2fa_is_optional_staff_without_a_device_sign_in_with_the_password(
    staff: User,
) -> None:
    client = Client()

    admin_login(client, staff.email, PASSWORD)

    assert in_admin(client)


def test_otp_enroll_gives_staff_a_device_and_its_url(staff: User, capsys: Any) -> None:
    call_command("otp_enroll", staff.email, "--name", "laptop")

    device = TOTPDevice.objects.get(user=staff)
    assert device.confirmed and device.name == "laptop"
    assert "otpauth://totp/" in capsys.readouterr().out
    call_command("otp_enroll", staff.email, "--replace")
    assert TOTPDevice.objects.filter(user=staff).count() == 1


def test_otp_enroll_refuses_people_who_are_not_staff(user: User) -> None:
    with pytest.raises(CommandError, match="not staff"):
        call_command("otp_enroll", user.email)


# --- URL prefix ------------------------------------------------------------------------------


@pytest.fixture
def admin_at_ops(settings: Settings) -> Iterator[None]:
    """The project's real URLs, built with ADMIN_URL = "ops-7f3a/"."""
    import config.urls
    import frontend.urls

    settings.ADMIN_URL = "ops-7f3a/"
    importlib.reload(frontend.urls)
    importlib.reload(config.urls)
    settings.ROOT_URLCONF = "config.urls"
    clear_url_caches()
    yield
    settings.ADMIN_URL = "admin/"
    importlib.reload(frontend.urls)
    importlib.reload(config.urls)
    clear_url_caches()


def test_the_admin_lives_under_the_configured_prefix(admin_at_ops: None, staff: User) -> None:
    client = Client()
    client.force_login(staff)

    moved = client.get("/ops-7f3a/")
    old = client.get("/admin/")

    assert moved.status_code == 200 and b"Site administration" in moved.content
    assert b"Site administration" not in old.content


@pytest.mark.parametrize("value", ["/admin/", "admin", "api/", "ops 1/"])
def test_a_bad_admin_prefix_fails_at_start(value: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_ADMIN_URL": value}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "DJANGO_ADMIN_URL" in result.stderr
