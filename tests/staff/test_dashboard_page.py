"""`/admin/dashboard/`: a page inside the admin, for whoever the admin lets in; its charts'
library and script come from this origin (the CSP allows no other)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from accounts.models import User

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_get_the_page_in_the_admins_look(superuser: User) -> None:
    client = Client()
    client.force_login(superuser)

    page = client.get("/admin/dashboard/")

    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="site-name"' in html  # the admin's header
    assert "/static/staff/vendor/chartjs/chart.umd.min.js" in html
    assert "/static/staff/dashboard.js" in html
    assert 'data-stats-url="/api/admin/stats"' in html
    assert "https://" not in html.split("<body", 1)[0]  # nothing from another origin
    assert "script-src 'self'" in page["Content-Security-Policy"]


def test_others_are_sent_to_the_admin_login(make_user: Callable[..., User]) -> None:
    anonymous = Client().get("/admin/dashboard/")
    user = Client()
    user.force_login(make_user())
    not_staff = user.get("/admin/dashboard/")

    assert anonymous.status_code == not_staff.status_code == 302
    assert anonymous["Location"].startswith("/admin/login/")
    assert not_staff["Location"].startswith("/admin/login/")


def test_the_chart_library_is_vendored_as_a_static_file() -> None:
    # Served by WhiteNoise from this origin; tests/browser/test_staff_dashboard.py loads it.
    found = finders.find("staff/vendor/chartjs/chart.umd.min.js")

    assert found is not None
    with open(found, "rb") as script:
        assert b"Chart.js v4.6.2" in script.read(200)


def test_the_admins_home_page_links_to_the_dashboard_above_the_models(superuser: User) -> None:
    client = Client()
    client.force_login(superuser)

    home = client.get("/admin/")

    assert home.status_code == 200
    html = home.content.decode()
    console = html.index('id="staff-console"')
    link = html.index('<a href="/admin/dashboard/">Dashboard</a>', console)
    assert link < html.index('href="/admin/accounts/user/"')  # the models are still listed, after
    assert client.get("/admin/dashboard/").status_code == 200  # where it leads
