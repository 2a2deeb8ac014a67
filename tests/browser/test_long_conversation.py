"""Measure a long conversation: time to render 240 stored messages, and the frame time while an
answer streams into it. Prints the numbers (run with -s to see them) and checks loose bounds
that catch a regression to per-token re-rendering of the whole thread.

The server is scripted (FakeBackend) so that the measurement is of the browser app alone.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.browser.fake_backend import ORIGIN, FakeBackend, long_conversation
from tests.browser.pages import send, wait_for_state

pytestmark = pytest.mark.browser

PAIRS = 120  # 240 messages
DELTAS = 300

# Records when the conversation's JSON arrived, and every frame's interval once started.
PERF_PROBE = """
window.__chatPerf = { renders: [] };
window.__frames = [];
const realFetch = window.fetch;
window.fetch = async (...args) => {
  const response = await realFetch(...args);
  if (String(args[0]).startsWith('/api/conversations/long')) {
    window.__conversationFetched = performance.now();
  }
  return response;
};
window.__startFrames = () => {
  window.__frames = [];
  let last = performance.now();
  const tick = (now) => {
    window.__frames.push(now - last);
    last = now;
    if (!window.__stopFrames) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
};
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def test_a_240_message_conversation_renders_fast_and_streams_smoothly(
    page: Any, frontend_dist: Path
) -> None:
    page.add_init_script(PERF_PROBE)
    fake = FakeBackend(page, frontend_dist)
    fake.conversations["long"] = long_conversation(PAIRS)

    page.goto(f"{ORIGIN}/c/long")
    page.wait_for_function(
        f"() => document.querySelectorAll('[data-testid=message]').length === {PAIRS * 2}"
    )
    render_ms = page.evaluate(
        "() => new Promise(done => requestAnimationFrame(() => setTimeout(() =>"
        " done(performance.now() - window.__conversationFetched))))"
    )

    send(page, "One more question")
    frame = fake.wait_for_frame("chat.send")
    accepted = fake.accept(frame, conversation_id="long", n=999)
    page.evaluate("() => window.__startFrames()")
    for seq in range(1, DELTAS + 1):
        piece = f"word{seq} " if seq % 40 else "\n\n```python\nprint('x')\n```\n\n"
        fake.stream(accepted["generation_id"], [piece], first_seq=seq)
        if seq % 3 == 0:
            page.wait_for_timeout(16)
    streamed = page.evaluate(
        "() => { window.__stopFrames = true; return window.__frames.slice(1); }"
    )
    renders = page.evaluate("() => window.__chatPerf.renders")
    fake.done(accepted["generation_id"], "done")
    wait_for_state(page, ("complete",))
    screenshot(page, "27-long-conversation")

    median_frame = statistics.median(streamed)
    p95_frame = percentile(streamed, 0.95)
    print(
        f"\nlong conversation ({PAIRS * 2} messages): render {render_ms:.0f} ms;"
        f" while streaming {DELTAS} deltas: {len(streamed)} frames, frame time median"
        f" {median_frame:.1f} ms, p95 {p95_frame:.1f} ms, max {max(streamed):.1f} ms;"
        f" {len(renders)} paints of the streaming message (median"
        f" {statistics.median(renders):.2f} ms, max {max(renders):.2f} ms)"
    )
    assert render_ms < 3000
    # Deltas are coalesced: fewer paints than deltas, at most one per frame.
    assert len(renders) < DELTAS
    assert len(renders) <= len(streamed) + 2
    assert median_frame < 50
