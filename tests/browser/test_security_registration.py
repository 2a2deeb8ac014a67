"""Issue 15, finding 9, in the browser app: registration does not sign in by itself. When the
server asks for email verification the app says where the link went; otherwise it signs in
with the same credentials. The emailed link lands on the login page, which says how it went."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import PASSWORD
from tests.browser.fake_backend import ORIGIN, USER, FakeBackend

pytestmark = pytest.mark.browser


class SignedOutBackend(FakeBackend):
    """FakeBackend for a visitor without a session, whose registration answers as configured."""

    def __init__(self, page: Any, dist: Path, *, verification_required: bool) -> None:
        self.verification_required = verification_required
        self.signed_in = False
        super().__init__(page, dist)

    def _http(self, route: Any) -> None:
        path = route.request.url.removeprefix(ORIGIN).split("?", 1)[0]
        if path == "/api/auth/me" and not self.signed_in:
            self.requests.append((route.request.method, path, None))
            error = {"error": {"code": "unauthorized", "message": "Sign in."}}
            self._json(route, error, 401)
        elif path == "/api/auth/register":
            self.requests.append(("POST", path, route.request.post_data_json))
            body = {
                "email": USER["email"],
                "email_verification_required": self.verification_required,
            }
            self._json(route, body, 201)
        elif path == "/api/auth/login":
            self.requests.append(("POST", path, route.request.post_data_json))
            self.signed_in = True
            self._json(route, USER)
        else:
            super()._http(route)


def fill_registration(page: Any) -> None:
    page.goto(f"{ORIGIN}/register")
    page.get_by_test_id("email").fill(USER["email"])
    page.get_by_test_id("password").fill(PASSWORD)
    page.get_by_test_id("submit").click()


def test_when_verification_is_required_the_app_says_where_the_link_went(
    page: Any, frontend_dist: Path
) -> None:
    backend = SignedOutBackend(page, frontend_dist, verification_required=True)

    fill_registration(page)

    notice = page.get_by_test_id("verification-sent")
    notice.wait_for()
    assert USER["email"] in notice.inner_text()
    assert page.get_by_test_id("composer").count() == 0
    assert not [r for r in backend.requests if r[1] == "/api/auth/login"]


def test_when_verification_is_off_the_app_signs_in_after_registering(
    page: Any, frontend_dist: Path
) -> None:
    backend = SignedOutBackend(page, frontend_dist, verification_required=False)

    fill_registration(page)

    page.get_by_test_id("composer").wait_for()
    posts = [path for method, path, _ in backend.requests if method == "POST"]
    assert posts[:2] == ["/api/auth/register", "/api/auth/login"]


@pytest.mark.parametrize(
    ("flag", "says"), [("1", "Your address is confirmed"), ("0", "invalid or has expired")]
)
def test_the_emailed_link_lands_on_the_login_page_which_says_how_it_went(
    page: Any, frontend_dist: Path, flag: str, says: str
) -> None:
    SignedOutBackend(page, frontend_dist, verification_required=True)

    page.goto(f"{ORIGIN}/login?verified={flag}")

    assert says in page.get_by_test_id("verification-result").inner_text()
