"""The browser app's handling of each server message, with the server's side scripted.

The real build runs in Chromium; FakeBackend plays PROTOCOL.md exactly, so states that the
real stack cannot produce on cue (busy, rate limits, moderation, a dropped connection, a
queue) are each reached and checked. Needs Chromium and a build, not the engine.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.browser.fake_backend import ORIGIN, FakeBackend
from tests.browser.pages import answer_text, last_answer, messages, send, wait_for_state

pytestmark = pytest.mark.browser

MODELS_URL = re.compile(r".*/api/models$")


@pytest.fixture
def fake(page: Any, frontend_dist: Path) -> FakeBackend:
    backend = FakeBackend(page, frontend_dist)
    page.goto(f"{ORIGIN}/")
    page.get_by_test_id("composer").wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=connection-banner]').dataset.state === 'open'"
    )
    return backend


def test_the_queue_position_shows_until_the_answer_starts(page: Any, fake: FakeBackend) -> None:
    send(page, "Hello")
    accepted = fake.accept(fake.wait_for_frame("chat.send"))
    fake.push(
        {"type": "generation.queued", "generation_id": accepted["generation_id"], "position": 3}
    )

    queue = page.get_by_test_id("queue-position")
    queue.wait_for()
    assert "3 requests ahead of you" in queue.inner_text()
    assert last_answer(page).get_attribute("data-state") == "queued"
    screenshot(page, "20-queued")
    fake.stream("g1", ["Hi ", "there"])
    wait_for_state(page, ("streaming",))
    assert queue.count() == 0
    fake.done("g1", "Hi there")
    wait_for_state(page, ("complete",))
    assert answer_text(page) == "Hi there"


# Long enough that a loaded CI machine still reads the countdown before it ends (4 s did not).
@pytest.mark.parametrize(("code", "retry_after"), [("busy", 12), ("rate_limited", 13)])
def test_busy_and_rate_limited_say_when_to_retry_and_give_the_text_back(
    page: Any, fake: FakeBackend, code: str, retry_after: int
) -> None:
    send(page, "Please answer")
    frame = fake.wait_for_frame("chat.send")
    fake.push(
        {
            "type": "error",
            "request_id": frame["request_id"],
            "code": code,
            "message": "Try again shortly.",
            "retry_after": retry_after,
        }
    )

    hint = page.get_by_test_id("retry-hint")
    hint.wait_for()
    assert "retry in" in hint.inner_text()
    assert page.get_by_test_id("composer").input_value() == "Please answer"
    assert page.get_by_test_id("send").is_disabled()
    assert messages(page, "user").count() == 0
    screenshot(page, f"21-{code}")
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=send]').disabled",
        timeout=retry_after * 1000 + 3000,
    )
    assert "retry now" in hint.inner_text()


def test_a_blocked_message_shows_the_explanation_not_a_generic_error(
    page: Any, fake: FakeBackend
) -> None:
    explanation = "It sounds like you are going through a lot. You can call 988 any time."
    send(page, "a message the moderation refuses")
    frame = fake.wait_for_frame("chat.send")
    fake.push(
        {
            "type": "moderation.blocked",
            "request_id": frame["request_id"],
            "categories": ["self-harm"],
            "message": explanation,
        }
    )

    notice = page.get_by_test_id("notice")
    notice.wait_for()
    assert explanation in notice.inner_text()
    assert notice.get_attribute("data-kind") == "moderation"
    screenshot(page, "22-moderation-input")


def test_an_answer_stopped_by_output_moderation_says_why(page: Any, fake: FakeBackend) -> None:
    send(page, "Hello")
    accepted = fake.accept(fake.wait_for_frame("chat.send"))
    fake.stream(accepted["generation_id"], ["Some text"])
    fake.push(
        {
            "type": "moderation.blocked",
            "generation_id": accepted["generation_id"],
            "categories": ["violence"],
            "message": "This answer was stopped by the content rules.",
        }
    )
    fake.done(accepted["generation_id"], "Some text", finish_reason="moderated")

    assert wait_for_state(page, ("moderated",)) == "moderated"
    assert "stopped by the content rules" in last_answer(page).inner_text()


def test_a_dropped_connection_reconnects_and_resumes_after_the_last_seq(
    page: Any, fake: FakeBackend
) -> None:
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if "[chat]" in m.text else None)
    send(page, "Tell me something")
    accepted = fake.accept(fake.wait_for_frame("chat.send"))
    fake.stream(accepted["generation_id"], ["One ", "two "])
    page.wait_for_function("() => document.body.innerText.includes('One two')")

    before = len(fake.frames)
    fake.sockets[-1].close(code=1011, reason="server restart")
    banner = page.get_by_test_id("connection-banner")
    page.wait_for_function(
        "() => document.querySelector('.connection-banner[data-state=reconnecting]')"
    )
    screenshot(page, "23-reconnecting")
    subscribe = fake.wait_for_frame("generation.subscribe", after=before, timeout_ms=15_000)

    assert subscribe == {"type": "generation.subscribe", "generation_id": "g1", "after_seq": 2}
    # The server replays from its checkpoint: seq 2 again (a duplicate), then new text.
    fake.stream("g1", ["two "], first_seq=2)
    fake.stream("g1", ["three ", "four"], first_seq=3)
    fake.done("g1", "One two three four")
    wait_for_state(page, ("complete",))
    assert answer_text(page) == "One two three four"
    assert banner.get_attribute("data-state") == "open"
    assert warnings == []


def test_keyboard_enter_sends_shift_enter_breaks_escape_stops_arrow_up_edits(
    page: Any, fake: FakeBackend
) -> None:
    composer = page.get_by_test_id("composer")
    composer.click()
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    assert composer.input_value() == "first line\nsecond line"
    page.keyboard.press("Enter")
    frame = fake.wait_for_frame("chat.send")
    assert frame["content"] == "first line\nsecond line"
    assert composer.input_value() == ""

    accepted = fake.accept(frame)
    fake.stream(accepted["generation_id"], ["Partial"])
    wait_for_state(page, ("streaming",))
    page.keyboard.press("Escape")
    stop = fake.wait_for_frame("generation.stop")
    assert stop == {"type": "generation.stop", "generation_id": "g1"}
    fake.done("g1", "Partial", finish_reason="stopped")
    wait_for_state(page, ("stopped",))

    composer.focus()
    page.keyboard.press("ArrowUp")
    editor = page.get_by_test_id("edit-input")
    editor.wait_for()
    assert editor.input_value() == "first line\nsecond line"
    assert editor.evaluate("el => el === document.activeElement")


def test_only_the_finished_answer_is_announced_to_screen_readers(
    page: Any, fake: FakeBackend
) -> None:
    announcer = page.get_by_test_id("announcer")
    assert announcer.get_attribute("aria-live") == "polite"
    send(page, "Hello")
    accepted = fake.accept(fake.wait_for_frame("chat.send"))
    fake.stream(accepted["generation_id"], ["Good ", "morning"])
    wait_for_state(page, ("streaming",))
    assert announcer.inner_text().strip() == ""
    fake.done("g1", "Good morning")
    wait_for_state(page, ("complete",))
    page.wait_for_function(
        "() => document.querySelector('[data-testid=announcer]').innerText.includes('Good morning')"
    )
    assert announcer.inner_text().startswith("Answer complete.")


def test_the_model_picker_and_system_prompt_go_with_the_message(
    page: Any, fake: FakeBackend
) -> None:
    page.get_by_test_id("model-picker").select_option("large")
    page.get_by_role("button", name="System prompt").click()
    page.get_by_test_id("system-prompt").fill("Answer like a pirate.")
    send(page, "Hello")

    frame = fake.wait_for_frame("chat.send")
    assert frame["model"] == "large"
    assert frame["options"] == {"system_prompt": "Answer like a pirate."}
    assert frame["conversation_id"] is None


def test_the_model_picker_is_never_blank_while_the_model_list_loads(
    page: Any, fake: FakeBackend
) -> None:
    picker = page.get_by_test_id("model-picker")
    selected = "el => el.options[el.selectedIndex]?.text ?? ''"
    page.wait_for_function(  # the list has come (with two models the picker offers Auto too)
        "() => Array.from(document.querySelector('[data-testid=model-picker]').options)"
        ".some(option => option.text === 'Small model')"
    )
    fake.hold_models = True

    with page.expect_request(MODELS_URL):
        page.reload()  # a returning user: the last list seen shows at once
    page.get_by_test_id("composer").wait_for()
    assert fake.held_models, "the list is still on its way"
    assert picker.evaluate(selected) == "Small model"

    page.evaluate("() => localStorage.clear()")
    with page.expect_request(MODELS_URL):
        page.reload()  # a first visit on this browser: no list seen yet
    page.get_by_test_id("composer").wait_for()
    assert picker.evaluate(selected) == "Loading models…"
    fake.release_models()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=model-picker]').selectedOptions[0]?.text"
        " === 'Small model'"
    )


def test_model_output_is_sanitised_and_code_blocks_can_be_copied(
    page: Any, fake: FakeBackend
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ORIGIN)
    text = (
        "Here:\n\n<img src=x onerror=\"document.title='pwned'\">\n"
        "<script>document.title='pwned'</script>\n\n"
        "```python\nprint('hi')\n```"
    )
    send(page, "Show code")
    accepted = fake.accept(fake.wait_for_frame("chat.send"))
    fake.done(accepted["generation_id"], text)
    wait_for_state(page, ("complete",))

    answer = last_answer(page)
    assert answer.locator("script, img[onerror]").count() == 0
    assert page.title() != "pwned"
    assert answer.locator(".hljs-built_in, .hljs-string").count() > 0
    answer.get_by_role("button", name="Copy python code").click()
    assert page.evaluate("() => navigator.clipboard.readText()") == "print('hi')"
    answer.get_by_role("button", name="Copy message").click()
    assert page.evaluate("() => navigator.clipboard.readText()") == text
    screenshot(page, "24-markdown-code")


def test_feedback_sends_the_rating_and_an_optional_comment(page: Any, fake: FakeBackend) -> None:
    send(page, "Hello")
    accepted = fake.accept(fake.wait_for_frame("chat.send"))
    fake.done(accepted["generation_id"], "Hi!")
    wait_for_state(page, ("complete",))

    last_answer(page).get_by_role("button", name="Good answer").click()
    page.get_by_label("Thanks! Add a comment (optional)").fill("Short and sweet")
    page.get_by_role("button", name="Send feedback").click()
    page.get_by_role("button", name="Send feedback").wait_for(state="detached")

    posted = [body for method, path, body in fake.requests if path == "/api/messages/a1/feedback"]
    assert posted == [{"rating": 1, "comment": ""}, {"rating": 1, "comment": "Short and sweet"}]
    assert (
        last_answer(page).get_by_role("button", name="Good answer").get_attribute("aria-pressed")
        == "true"
    )


def test_usage_shows_tokens_per_day_and_model_or_says_it_is_unavailable(
    page: Any, fake: FakeBackend
) -> None:
    page.goto(f"{ORIGIN}/usage")
    page.get_by_text("not available on this server yet").wait_for()

    fake.usage = {
        "quota": {"tokens_per_day": 100000, "tokens_left_today": 98765},
        "per_day": [{"date": "2025-01-02", "prompt_tokens": 1000, "completion_tokens": 235}],
        "per_model": [{"model": "small", "prompt_tokens": 1000, "completion_tokens": 235}],
    }
    page.reload()
    usage = page.get_by_test_id("usage")
    usage.get_by_text("98,765").wait_for()
    assert usage.locator("table").count() == 2
    assert "Per model" in usage.inner_text()
    screenshot(page, "25-usage")


def test_dark_theme_follows_the_system(browser: Any, frontend_dist: Path) -> None:
    context = browser.new_context(color_scheme="dark", viewport={"width": 1280, "height": 820})
    page = context.new_page()
    try:
        FakeBackend(page, frontend_dist)
        page.goto(f"{ORIGIN}/")
        page.get_by_test_id("composer").wait_for()
        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        screenshot(page, "26-dark-theme")
    finally:
        context.close()
    assert background == "rgb(22, 24, 29)"
