"""The staff dashboard in Chromium on the real stack (Daphne, a Celery worker hosting vLLM):
a staff member signs in to the admin, the page draws real usage, latency and moderation with
the vendored Chart.js, refreshes without a reload while a user's answer streams, and its kill
switch stops that answer for the user's real websocket client. Screenshots go to
test-artifacts/screenshots/ (the ones in docs/screenshots/ were taken by this test)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from chatclient.client import GenerationResult
from staff.stats import TOP_USERS
from tests.browser.conftest import screenshot
from tests.e2e.metrics_support import PASSWORD, staff_account, user_client
from tests.support.stack import Stack

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

STORY = "Write a long story about a lighthouse keeper, a storm and a lost ship."


def full_page(page: Any, name: str) -> None:
    path = screenshot(page, name)  # the viewport, then the whole page over it
    page.screenshot(path=str(path), full_page=True)


def run_apart(coroutine: Any) -> None:
    """Run a coroutine to its end on a thread of its own: Playwright's sync API holds an event
    loop in the test's thread."""
    failures: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(180)
    if failures:
        raise failures[0]


def chart_points(page: Any, canvas: str) -> int:
    """How many values the Chart.js chart on `canvas` draws now."""
    return int(
        page.evaluate(
            "(id) => { const c = Chart.getChart(id); return c ? c.data.datasets"
            ".reduce((n, d) => n + d.data.filter((v) => v !== null).length, 0) : -1; }",
            canvas,
        )
    )


def refreshes(page: Any) -> int:
    return int(page.locator("#dashboard").get_attribute("data-refreshes") or "0")


class StreamingClient:
    """A user's real websocket client streaming a long answer in a thread of its own."""

    def __init__(self, stack: Stack) -> None:
        self.user = user_client(stack)
        self.accepted: dict[str, Any] | None = None
        self.result: GenerationResult | None = None
        self.started = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self.run()), daemon=True)

    async def run(self) -> None:
        async with self.user.connect() as session:
            self.accepted = await session.send(STORY, options={"max_tokens": 1024})
            generation_id = self.accepted["generation_id"]
            first = await session.wait_for(
                lambda m: (
                    m.get("generation_id") == generation_id and m["type"] == "generation.delta"
                )
            )
            session.pending.insert(0, first)
            self.started.set()
            self.result = await session.collect(generation_id, timeout=120)


def test_the_dashboard_draws_live_data_and_its_kill_switch_stops_an_answer(
    live_stack: Stack, page: Any
) -> None:
    # Something to draw: answers billed, a message moderation refused.
    chatter = user_client(live_stack)

    async def chat() -> None:
        async with chatter.connect() as session:
            await session.send("I want to kill myself tonight.")
            for question in ("Name three colours.", "Say hello."):
                accepted = await session.send(question, options={"max_tokens": 16})
                await session.collect(accepted["generation_id"])

    run_apart(chat())
    email = staff_account(live_stack, superuser=True)
    problems: list[str] = []
    # The browser's own favicon request is no part of the page (this checkout serves no
    # built app at /favicon.ico); any other console error is.
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    page.goto(f"{live_stack.base_url}/admin/login/?next=/admin/dashboard/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/dashboard/")
    expect(page.locator("#dashboard-status")).to_contain_text("Updated", timeout=30_000)
    page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads

    assert page.locator("#site-name").is_visible()  # inside the admin's look
    assert chart_points(page, "chart-tokens-model") >= 1
    assert chart_points(page, "chart-cost-plan") >= 1
    assert chart_points(page, "chart-ttft") >= 2  # p50 and p95 of the model
    assert chart_points(page, "chart-speed") >= 2
    assert chart_points(page, "chart-moderation") >= 1
    # The stack is shared with the session's other tests, whose users may outrank this one:
    # the table must list exactly the top users that the staff API gives scripts, in order.
    hours = page.locator("#dashboard-hours").input_value()
    stats = page.request.get(f"{live_stack.base_url}/api/admin/stats?hours={hours}").json()
    top = [row["email"] for row in stats["top_users"]]
    assert top, stats
    if chatter.email not in top:
        assert len(top) == TOP_USERS, (chatter.email, top)  # outranked, not missing
    rows = page.locator("#top-users tbody tr")
    expect(rows).to_have_count(len(top))
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(len(top))] == top
    expect(page.locator("#tile-websockets")).not_to_have_text("\u2013")  # the placeholder
    full_page(page, "staff-dashboard")

    streaming = StreamingClient(live_stack)
    streaming.thread.start()
    assert streaming.started.wait(120), "the answer did not start streaming"
    assert streaming.accepted is not None
    generation_id = streaming.accepted["generation_id"]
    row = page.locator(f'#live-generations tr[data-generation-id="{generation_id}"]')
    expect(row).to_contain_text("running", timeout=20_000)  # a refresh, not a reload
    expect(row).to_contain_text(streaming.user.email or "")
    row.scroll_into_view_if_needed()
    screenshot(page, "staff-dashboard-live-generation")

    page.once("dialog", lambda dialog: dialog.accept())
    stopped_at = time.monotonic()
    row.locator("button.stop-generation").click()
    streaming.thread.join(60)

    result = streaming.result
    assert result is not None and result.final is not None
    assert result.final["type"] == "generation.done"
    assert result.final["finish_reason"] == "stopped"
    assert result.final["text"] == "".join(d["text"] for d in result.deltas)
    print(f"kill switch click -> generation.done: {time.monotonic() - stopped_at:.2f} s")
    expect(row).to_have_count(0, timeout=20_000)  # gone from the live table, still no reload
    assert page.evaluate("() => window.sameDocument === true")
    assert refreshes(page) >= 2
    full_page(page, "staff-dashboard-after-stop")
    assert not failed, failed
    assert not problems, problems
