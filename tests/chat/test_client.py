"""The reference client's pieces that need no server: backoff, rendering, the CLI's arguments."""

from __future__ import annotations

import io
import itertools

from chat.cli import Renderer, parse_args
from chat.client import StreamEvent, backoff_delays


def test_backoff_grows_exponentially_up_to_the_cap_when_jitter_is_at_its_maximum() -> None:
    delays = backoff_delays(base=0.5, cap=8.0, rng=lambda: 1.0)

    assert list(itertools.islice(delays, 7)) == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_backoff_jitter_spreads_each_delay_between_zero_and_its_ceiling() -> None:
    samples = iter([0.0, 0.25, 0.999])
    delays = backoff_delays(base=1.0, cap=30.0, rng=lambda: next(samples))

    assert list(itertools.islice(delays, 3)) == [0.0, 0.5, 0.999 * 4]


def test_default_backoff_is_randomised() -> None:
    first = list(itertools.islice(backoff_delays(), 6))
    second = list(itertools.islice(backoff_delays(), 6))

    assert first != second
    assert all(0 <= delay <= 30 for delay in first)


def render(*events: StreamEvent) -> tuple[str, list[bool]]:
    out, err = io.StringIO(), io.StringIO()
    renderer = Renderer(out, err)
    ended = [renderer.event(event) for event in events]
    return out.getvalue(), ended


def test_the_renderer_prints_deltas_as_they_come_and_marks_a_stopped_answer() -> None:
    text, ended = render(
        StreamEvent("generation.delta", {"seq": 1, "text": "Hel"}),
        StreamEvent("generation.delta", {"seq": 2, "text": "lo"}),
        StreamEvent("generation.done", {"text": "Hello", "finish_reason": "stopped"}),
    )

    assert text == "Hello [stopped]\n"
    assert ended == [False, False, True]


def test_the_renderer_completes_text_it_missed_from_the_final_message() -> None:
    text, _ = render(
        StreamEvent("generation.delta", {"seq": 1, "text": "Hel"}),
        StreamEvent("generation.done", {"text": "Hello world", "finish_reason": "stop"}),
    )

    assert text == "Hello world\n"


def test_the_renderer_shows_refusals_with_their_retry_time() -> None:
    text, ended = render(
        StreamEvent("error", {"code": "rate_limited", "message": "Slow down.", "retry_after": 12}),
    )

    assert text == "[rate_limited] Slow down. (retry in 12 s)\n"
    assert ended == [False]


def test_the_cli_reads_its_options_and_the_one_shot_prompt() -> None:
    args = parse_args(["--url", "http://h:1", "--max-tokens", "16", "Say", "hi"])

    assert (args.url, args.max_tokens, args.prompt) == ("http://h:1", 16, ["Say", "hi"])
