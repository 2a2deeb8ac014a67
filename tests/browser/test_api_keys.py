"""The settings page for API keys (`/keys`) and the plan on the usage page, in Chromium.

With the server's side scripted (FakeBackend): the list, a new key shown once with its warning
and copied to the clipboard, revocation only after a confirmation, and the plan's limits with
what is left of them. Against the real stack (marked e2e): a key made on the page works with
the official `openai` client, its answer counts under the source `api` on the usage page, and
revoking it on the page stops it at once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.browser.fake_backend import ORIGIN, USER, FakeBackend
from tests.browser.pages import register

pytestmark = pytest.mark.browser

SECRET = "sk-Q2v9sX1aFakeButWholeSecretOf43Characters_0123"
PLAN = {
    "name": "pro",
    "description": "For daily work",
    "limits": {
        "messages_per_minute": 60,
        "daily_messages": 5000,
        "monthly_token_budget": 0,
        "concurrent_generations": 4,
        "max_output_tokens": None,
        "allowed_models": [],
        "priority": 9,
    },
    "left": {
        "messages_this_minute": 60,
        "messages_today": 4321,
        "tokens_this_month": None,
        "concurrent_generations": 4,
    },
}


def key_json(key_id: int, name: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": key_id,
        "name": name,
        "prefix": f"sk-Pfx0000{key_id}",
        "scopes": ["chat", "models", "moderations", "embeddings"],
        "store_conversations": False,
        "created_at": "2026-11-02T10:00:00+00:00",
        "expires_at": None,
        "last_used_at": "2026-12-04T09:30:00+00:00",
        **fields,
    }


class KeysBackend(FakeBackend):
    """FakeBackend with `/api/keys` (list, create, revoke) and a plan in `/api/auth/me`."""

    def __init__(self, page: Any, dist: Path) -> None:
        self.keys = [key_json(1, "old laptop")]
        super().__init__(page, dist)

    def _http(self, route: Any) -> None:
        request = route.request
        path = request.url.removeprefix(ORIGIN).split("?", 1)[0]
        if path == "/api/auth/me":
            self.requests.append((request.method, path, None))
            self._json(route, {**USER, "plan": PLAN})
        elif path == "/api/keys" and request.method == "POST":
            body = request.post_data_json
            self.requests.append(("POST", path, body))
            created = key_json(7, body["name"], scopes=body["scopes"], last_used_at=None)
            self.keys.insert(0, created)
            self._json(route, {**created, "key": SECRET}, 201)
        elif path == "/api/keys":
            self.requests.append(("GET", path, None))
            self._json(route, {"results": self.keys, "next_cursor": None})
        elif m := re.fullmatch(r"/api/keys/(\d+)", path):
            self.requests.append((request.method, path, None))
            self.keys = [k for k in self.keys if k["id"] != int(m.group(1))]
            route.fulfill(status=204, body="")
        else:
            super()._http(route)


@pytest.fixture
def keys_page(page: Any, frontend_dist: Path) -> tuple[Any, KeysBackend]:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ORIGIN)
    backend = KeysBackend(page, frontend_dist)
    page.goto(f"{ORIGIN}/")
    page.get_by_test_id("composer").wait_for()
    page.get_by_test_id("keys-link").click()
    page.get_by_test_id("key-row").first.wait_for()
    return page, backend


def test_the_keys_page_lists_each_key_without_its_secret(
    keys_page: tuple[Any, KeysBackend],
) -> None:
    page, _ = keys_page

    cells = page.get_by_test_id("key-row").locator("td").all_inner_texts()

    assert page.url == f"{ORIGIN}/keys"
    assert cells[:3] == ["old laptop", "sk-Pfx00001…", "chat, models, moderations, embeddings"]
    assert "2026" in cells[3] and cells[4] == "Never" and "2026" in cells[5]


def test_a_new_key_is_shown_once_with_a_warning_and_copied_to_the_clipboard(
    keys_page: tuple[Any, KeysBackend],
) -> None:
    page, backend = keys_page
    page.get_by_test_id("key-name").fill("editor")
    page.get_by_test_id("key-scope-embeddings").uncheck()
    page.get_by_test_id("key-expiry").select_option(label="1 year")
    page.get_by_test_id("key-create").click()

    secret = page.get_by_test_id("key-secret")
    secret.wait_for()
    screenshot(page, "27-api-key-created")
    page.get_by_test_id("key-copy").click()
    page.get_by_test_id("key-copy-status").get_by_text("Copied to the clipboard.").wait_for()
    clipboard = page.evaluate("() => navigator.clipboard.readText()")

    posted = [body for method, path, body in backend.requests if method == "POST"]
    assert posted == [
        {"name": "editor", "scopes": ["chat", "models", "moderations"], "expires_in_days": 365}
    ]
    assert secret.input_value() == SECRET and clipboard == SECRET
    assert "only time the whole key is shown" in page.get_by_test_id("key-created").inner_text()
    assert [row.get_attribute("data-key-id") for row in page.get_by_test_id("key-row").all()] == [
        "7",
        "1",
    ]

    page.get_by_test_id("key-created-done").click()
    page.get_by_test_id("key-secret").wait_for(state="detached")
    assert SECRET not in page.content()


def test_a_key_is_revoked_only_after_the_person_confirms(
    keys_page: tuple[Any, KeysBackend],
) -> None:
    page, backend = keys_page
    page.get_by_test_id("key-revoke").click()
    dialog = page.get_by_role("dialog")
    assert "“old laptop”" in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="detached")
    assert not [r for r in backend.requests if r[0] == "DELETE"]

    page.get_by_test_id("key-revoke").click()
    page.get_by_test_id("confirm-revoke").click()
    page.get_by_test_id("no-keys").wait_for()

    assert [path for method, path, _ in backend.requests if method == "DELETE"] == ["/api/keys/1"]


def test_the_usage_page_shows_the_plan_and_what_is_left_of_it(
    page: Any, frontend_dist: Path
) -> None:
    backend = KeysBackend(page, frontend_dist)
    backend.usage = {"per_day": [], "per_model": [], "total": {"generations": 0}}
    page.goto(f"{ORIGIN}/usage")

    plan = page.get_by_test_id("plan")
    plan.wait_for()
    screenshot(page, "28-usage-plan")

    assert page.get_by_test_id("plan-name").inner_text() == "pro"
    assert page.get_by_test_id("left-messages_today").inner_text() == "4,321"
    daily = plan.locator('tr[data-limit="messages_today"] td').all_inner_texts()
    monthly = plan.locator('tr[data-limit="tokens_this_month"] td').all_inner_texts()
    assert daily == ["5,000 a day", "4,321"]
    assert monthly == ["No limit", "—"]


@pytest.mark.e2e
def test_a_key_made_on_the_page_works_with_the_openai_client_until_revoked_there(
    page: Any, app_url: str
) -> None:
    import openai

    register(page, app_url)
    page.get_by_test_id("keys-link").click()
    page.get_by_test_id("no-keys").wait_for()
    page.get_by_test_id("key-name").fill("browser e2e")
    page.get_by_test_id("key-create").click()
    secret = page.get_by_test_id("key-secret").input_value()
    client = openai.OpenAI(base_url=f"{app_url}/v1", api_key=secret, max_retries=0, timeout=120)

    models = [model.id for model in client.models.list()]
    answer = client.chat.completions.create(
        model=models[0], messages=[{"role": "user", "content": "Say hi."}], max_tokens=4
    )
    page.get_by_test_id("key-created-done").click()
    page.reload()  # the list again, now with the key's last use
    row = page.get_by_test_id("key-row")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    page.get_by_test_id("key-revoke").click()
    page.get_by_test_id("confirm-revoke").click()
    page.get_by_test_id("no-keys").wait_for()
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    page.goto(f"{app_url}/usage")
    page.get_by_test_id("plan").wait_for()
    per_source = page.locator("section", has_text="Per source").locator("tbody tr")
    per_source.first.wait_for()

    assert secret.startswith("sk-") and len(secret) >= 46
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    assert cells[0] == "browser e2e" and secret.startswith(cells[1].removesuffix("…"))
    assert cells[5] != "Never"  # last used: just now
    assert page.get_by_test_id("plan-name").inner_text() == "free"
    sources = {
        row.locator("td").first.inner_text(): row.locator("td").nth(1).inner_text()
        for row in per_source.all()
    }
    assert sources == {"ws": "0", "api": "1"}  # source, generations
