"""The browser app against the real stack: Daphne, a Celery worker with vLLM, real services.

Each test is what a person does, step by step, through the data-testid hooks of issue 6.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.browser.pages import (
    FINAL_STATES,
    LONG_PROMPT,
    MODEL_ENDINGS,
    answer_text,
    api_get,
    conversation_id,
    end_answer,
    last_answer,
    messages,
    register,
    send_when_ready,
    wait_for_state,
    wait_for_text,
)

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def streamed_lengths(page: Any, *, timeout: float) -> set[int]:
    """The distinct lengths the answer showed while its state was still "streaming"."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = answer_text(page)
        if last_answer(page).get_attribute("data-state") != "streaming":
            return seen
        seen.add(len(text))
        if len(seen) == 2:
            screenshot(page, "03-streaming")
        page.wait_for_timeout(100)
    raise AssertionError(f"the answer was still streaming after {timeout} s")


def test_a_person_registers_logs_out_and_logs_back_in(page: Any, app_url: str) -> None:
    page.goto(f"{app_url}/register")
    page.get_by_test_id("email").fill("not-an-email")
    page.get_by_test_id("password").fill("short")
    page.get_by_test_id("submit").click()
    page.locator(".field-error").first.wait_for()
    screenshot(page, "01-register-errors")

    email = register(page, app_url)
    screenshot(page, "02-empty-chat")
    page.get_by_test_id("logout").click()
    page.get_by_test_id("register-link").wait_for()

    page.get_by_test_id("email").fill(email)
    page.get_by_test_id("password").fill("wrong password entirely")
    page.get_by_test_id("submit").click()
    assert page.get_by_role("alert").first.inner_text().strip()

    page.get_by_test_id("password").fill("correct horse battery staple 42")
    page.get_by_test_id("submit").click()
    page.get_by_test_id("composer").wait_for()
    assert email in page.locator(".user-email").inner_text()


def test_a_sent_message_gets_an_answer_that_streams_in(page: Any, app_url: str) -> None:
    register(page, app_url)
    send_when_ready(page, LONG_PROMPT)

    expect(messages(page, "user").last).to_contain_text("Write a long")
    wait_for_text(page, min_chars=1)
    # Output moderation releases text a window (a sentence) at a time, and a slow machine can
    # take seconds per sentence: watch the answer for as long as it streams, not a fixed span.
    lengths = streamed_lengths(page, timeout=180)
    state = wait_for_state(page, FINAL_STATES)

    assert state in MODEL_ENDINGS
    assert len(lengths) > 1, f"the answer did not grow while streaming: {sorted(lengths)}"
    assert answer_text(page)
    conversation = conversation_id(page)
    assert page.get_by_test_id("conversation-item").first.inner_text().strip()
    stored = api_get(page, f"/api/conversations/{conversation}")
    stored_answer = next(m for m in stored["messages"] if m["role"] == "assistant")
    assert stored_answer["state"] == state
    if state == "complete":
        assert page.get_by_test_id("announcer").inner_text().startswith("Answer complete.")
    screenshot(page, "04-answer-complete")


def test_stop_ends_the_answer_and_keeps_its_text(page: Any, app_url: str) -> None:
    register(page, app_url)
    send_when_ready(page, LONG_PROMPT)
    wait_for_text(page, min_chars=20)

    page.get_by_test_id("stop").click()
    state = wait_for_state(page, ("stopped", "complete"))

    assert state == "stopped"
    kept = answer_text(page)
    assert kept
    screenshot(page, "05-stopped")
    page.reload()
    assert wait_for_state(page, ("stopped",)) == "stopped"
    assert answer_text(page) == kept
    page.get_by_test_id("send").wait_for()


def test_a_reload_mid_stream_resumes_and_completes_without_lost_or_repeated_text(
    page: Any, app_url: str
) -> None:
    warnings: list[str] = []
    page.on(
        "console",
        lambda message: warnings.append(message.text) if "[chat]" in message.text else None,
    )
    register(page, app_url)
    send_when_ready(page, LONG_PROMPT)
    wait_for_text(page, min_chars=10)
    conversation = conversation_id(page)

    page.reload()
    last_answer(page).wait_for()
    state_after_reload = last_answer(page).get_attribute("data-state")
    screenshot(page, "06-resumed-after-reload")
    state = wait_for_state(page, FINAL_STATES, timeout=180_000)

    assert state_after_reload in ("queued", "streaming"), "the reload did not land mid-stream"
    assert state in MODEL_ENDINGS
    assert warnings == [], f"streamed text did not add up to the final text: {warnings}"
    stored = api_get(page, f"/api/conversations/{conversation}")
    answer = next(m for m in stored["messages"] if m["role"] == "assistant")
    # The page shows the stored text (its words, Markdown aside), in order.
    shown = answer_text(page)
    position = 0
    for word in re.findall(r"[A-Za-z']+", answer["content"])[:80]:
        found = shown.find(word, position)
        assert found >= 0, f"{word!r} missing after position {position}"
        position = found + len(word)


def test_a_network_drop_mid_stream_reconnects_and_completes_the_answer(
    page: Any, app_url: str
) -> None:
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if "[chat]" in m.text else None)
    links: list[tuple[Any, Any]] = []

    def relay(ws: Any) -> None:
        # A pass-through to the real server that the test can cut, like a dropped network.
        links.append((ws, ws.connect_to_server()))

    page.route_web_socket(re.compile(r".*/ws/chat/$"), relay)
    register(page, app_url)
    send_when_ready(page, LONG_PROMPT)
    wait_for_text(page, min_chars=10)

    client_side, server_side = links[-1]
    client_side.close(code=1011, reason="network drop")
    server_side.close()
    page.wait_for_function(
        "() => document.querySelector('.connection-banner[data-state=reconnecting]')"
    )
    state = wait_for_state(page, FINAL_STATES, timeout=180_000)

    assert len(links) >= 2, "the app did not reconnect"
    assert state in MODEL_ENDINGS
    assert warnings == [], f"streamed text did not add up to the final text: {warnings}"
    assert page.get_by_test_id("connection-banner").get_attribute("data-state") == "open"


def test_regenerate_adds_a_sibling_answer_and_the_arrows_switch_between_them(
    page: Any, app_url: str
) -> None:
    register(page, app_url)
    send_when_ready(page, "Name a colour.")
    end_answer(page)
    first = answer_text(page)

    last_answer(page).get_by_test_id("regenerate").click()
    expect(last_answer(page).locator(".sibling-count")).to_have_text("2/2")
    end_answer(page)
    second = answer_text(page)

    expect(last_answer(page).locator(".sibling-count")).to_have_text("2/2")
    screenshot(page, "07-regenerated-2-of-2")
    last_answer(page).get_by_test_id("sibling-prev").click()
    expect(last_answer(page).locator(".sibling-count")).to_have_text("1/2")
    assert answer_text(page) == first
    last_answer(page).get_by_test_id("sibling-next").click()
    expect(last_answer(page).locator(".sibling-count")).to_have_text("2/2")
    assert answer_text(page) == second
    assert messages(page, "assistant").count() == 1


def edit(page: Any, message: Any, text: str) -> None:
    """Edit a sent message as a person does: the pencil, wait for the focused box, type, Enter."""
    message.get_by_test_id("edit").click()
    editor = page.get_by_test_id("edit-input")
    expect(editor).to_be_focused()
    editor.fill(text)
    editor.press("Enter")


def test_editing_a_sent_message_creates_a_branch(page: Any, app_url: str) -> None:
    register(page, app_url)
    send_when_ready(page, "Say hello.")
    end_answer(page)
    send_when_ready(page, "Now say goodbye.")
    end_answer(page)

    edit(page, messages(page, "user").last, "Now say good night.")
    expect(messages(page, "user").last.locator(".sibling-count")).to_have_text("2/2")
    end_answer(page)

    edited = messages(page, "user").last
    expect(edited.locator(".plain")).to_have_text("Now say good night.")
    expect(edited.locator(".sibling-count")).to_have_text("2/2")
    assert messages(page, "user").count() == 2
    screenshot(page, "08-edited-branch")
    edited.get_by_test_id("sibling-prev").click()
    expect(messages(page, "user").last.locator(".plain")).to_have_text("Now say goodbye.")
    assert messages(page, "assistant").count() == 2


def test_editing_the_first_message_starts_a_second_first_branch(page: Any, app_url: str) -> None:
    register(page, app_url)
    send_when_ready(page, "Say hello.")
    end_answer(page)

    edit(page, messages(page, "user").first, "Say hi.")
    expect(messages(page, "user").first.locator(".sibling-count")).to_have_text("2/2")
    end_answer(page)

    # A new first message beside the old one, not a follow-up after it.
    assert messages(page, "user").count() == 1
    expect(messages(page, "user").first.locator(".plain")).to_have_text("Say hi.")
    page.reload()  # the server kept both branches and is on the new one
    first = messages(page, "user").first
    expect(first.locator(".plain")).to_have_text("Say hi.")
    expect(first.locator(".sibling-count")).to_have_text("2/2")
    screenshot(page, "08b-first-message-edited")
    first.get_by_test_id("sibling-prev").click()
    expect(messages(page, "user").first.locator(".plain")).to_have_text("Say hello.")
    assert messages(page, "user").count() == 1


def test_deleting_a_conversation_removes_it_from_the_list_and_its_address(
    page: Any, app_url: str
) -> None:
    register(page, app_url)
    send_when_ready(page, "Remember the word pineapple.")
    end_answer(page)
    conversation = conversation_id(page)
    item = page.get_by_test_id("conversation-item").first

    item.get_by_role("button", name="Actions for").click()
    page.get_by_role("button", name="Delete").click()
    screenshot(page, "09-delete-confirmation")
    page.get_by_test_id("confirm-delete").click()

    page.wait_for_function("() => !document.querySelector('[data-testid=conversation-item]')")
    assert page.url.endswith("/")
    page.goto(f"{app_url}/c/{conversation}")
    page.get_by_text("does not exist").wait_for()
    response = page.request.get(f"{app_url}/api/conversations/{conversation}")
    assert response.status == 404


def test_the_sidebar_renames_searches_and_archives(page: Any, app_url: str) -> None:
    register(page, app_url)
    send_when_ready(page, "Tell me about penguins.")
    end_answer(page)
    page.get_by_test_id("new-chat").click()
    send_when_ready(page, "Tell me about volcanoes.")
    end_answer(page)
    assert page.get_by_test_id("conversation-item").count() == 2

    page.get_by_test_id("conversation-item").first.get_by_role("button", name="Actions for").click()
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("Title").fill("Fire mountains")
    page.get_by_role("button", name="Save").click()
    page.get_by_test_id("conversation-item").filter(has_text="Fire mountains").wait_for()

    page.get_by_test_id("search").fill("penguins")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=conversation-item]').length === 1"
    )
    assert "penguins" in page.get_by_test_id("conversation-item").inner_text().lower()
    screenshot(page, "10-search")
    page.get_by_test_id("search").fill("")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=conversation-item]').length === 2"
    )

    page.get_by_test_id("conversation-item").filter(has_text="Fire mountains").get_by_role(
        "button", name="Actions for"
    ).click()
    page.get_by_role("button", name="Archive", exact=True).click()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=conversation-item]').length === 1"
    )
    page.get_by_role("button", name="Archived", exact=True).click()
    page.get_by_test_id("conversation-item").filter(has_text="Fire mountains").wait_for()


def test_the_app_works_on_a_phone_sized_screen(phone_page: Any, app_url: str) -> None:
    page = phone_page
    register(page, app_url)
    send_when_ready(page, "Give me three tips for sleeping well.")
    wait_for_text(page, min_chars=20)
    screenshot(page, "11-phone-streaming")
    wait_for_state(page, FINAL_STATES, timeout=180_000)

    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at 360px"
    assert page.get_by_test_id("new-chat").is_hidden()
    page.get_by_role("button", name="Open conversations").click()
    page.get_by_test_id("new-chat").wait_for()
    assert page.get_by_test_id("conversation-item").count() == 1
    screenshot(page, "12-phone-drawer")
    page.get_by_test_id("new-chat").click()
    page.get_by_test_id("new-chat").wait_for(state="hidden")
    assert page.get_by_test_id("composer").is_visible()
