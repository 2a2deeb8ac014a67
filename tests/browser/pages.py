"""What a person does in the app, as small functions over Playwright pages (data-testid hooks)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.browser.conftest import PASSWORD

# Long enough that the answer is still streaming when a test acts on it (stop, reload).
LONG_PROMPT = (
    "Write a long, detailed story about a lighthouse keeper and a storm, in many paragraphs."
)
FINAL_STATES = ("complete", "stopped", "interrupted", "failed", "moderated")
# How an answer the model finished may end: output moderation can stop a sampled story (a storm
# story once had a character say "we're going to die", which the self-harm patterns block).
MODEL_ENDINGS = ("complete", "moderated")


def register(page: Any, base_url: str) -> str:
    email = f"browser-{uuid.uuid4().hex[:10]}@example.com"
    page.goto(f"{base_url}/")
    page.get_by_test_id("register-link").click()
    page.get_by_test_id("email").fill(email)
    page.get_by_test_id("password").fill(PASSWORD)
    page.get_by_test_id("submit").click()
    page.get_by_test_id("composer").wait_for()
    return email


def send(page: Any, text: str) -> None:
    composer = page.get_by_test_id("composer")
    composer.fill(text)
    composer.press("Enter")


def send_when_ready(page: Any, text: str) -> None:
    """Send `text` once the app accepts a message (it refuses while an answer is still
    ending), and wait until it has been taken from the composer."""
    from playwright.sync_api import expect

    composer = page.get_by_test_id("composer")
    composer.fill(text)
    expect(page.get_by_test_id("send")).to_be_enabled(timeout=30_000)
    composer.press("Enter")
    expect(composer).to_have_value("", timeout=30_000)


def messages(page: Any, role: str) -> Any:
    return page.locator(f'[data-testid="message"][data-role="{role}"]')


def last_answer(page: Any) -> Any:
    return messages(page, "assistant").last


def wait_for_state(page: Any, states: tuple[str, ...], *, timeout: float = 120_000) -> str:
    """Wait until the last answer is in one of `states`; return the state."""
    selector = '[data-testid="message"][data-role="assistant"]'
    page.wait_for_function(
        """([selector, states]) => {
            const all = document.querySelectorAll(selector);
            const last = all[all.length - 1];
            return Boolean(last) && states.includes(last.dataset.state);
        }""",
        arg=[selector, list(states)],
        timeout=timeout,
    )
    return str(last_answer(page).get_attribute("data-state"))


def wait_for_accepted(page: Any, *, timeout: float = 120_000) -> None:
    """Wait until no sent message is still waiting for the server ("sending"). Until the
    server accepts a message, the last answer on the page is the previous one."""
    sending = '[data-testid="message"][data-role="user"][data-state="sending"]'
    page.wait_for_function(
        "(sending) => !document.querySelector(sending)", arg=sending, timeout=timeout
    )


def wait_for_text(page: Any, *, min_chars: int, timeout: float = 120_000) -> None:
    """Wait until the last answer shows at least `min_chars` characters (after the message
    just sent, if any, was accepted: not the answer before it)."""
    wait_for_accepted(page, timeout=timeout)
    page.wait_for_function(
        """(min) => {
            const all = document.querySelectorAll('[data-testid="message"][data-role="assistant"]');
            const last = all[all.length - 1];
            const body = last && last.querySelector('.markdown');
            return Boolean(body) && body.textContent.trim().length >= min;
        }""",
        arg=min_chars,
        timeout=timeout,
    )


def answer_text(page: Any) -> str:
    # textContent, not innerText: it does not depend on layout (content-visibility: auto).
    return str(last_answer(page).locator(".markdown").text_content()).strip()


def conversation_id(page: Any) -> str:
    page.wait_for_url("**/c/*")
    return str(page.url.rsplit("/c/", 1)[1])


def api_get(page: Any, path: str) -> Any:
    """A REST call with the page's session cookie."""
    response = page.request.get(f"{origin(page)}{path}")
    assert response.ok, f"GET {path}: {response.status} {response.text()}"
    return response.json()


def origin(page: Any) -> str:
    scheme, _, host = page.url.split("/", 3)[:3]
    return f"{scheme}//{host}"


def end_answer(page: Any) -> str:
    """Let the answer start, then stop it with Esc if it is still running; its final state."""
    wait_for_text(page, min_chars=1)
    if last_answer(page).get_attribute("data-state") in ("queued", "streaming"):
        page.keyboard.press("Escape")
    return wait_for_state(page, ("stopped", "complete"))
