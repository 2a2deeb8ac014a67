"""The first-token waterfall of `bench/pipeline.py --trace`, on hand-made spans."""

from __future__ import annotations

from bench.waterfall import FIRST_TEXT, render, rows
from tests.support.otlp import ReceivedSpan

MS = 1_000_000


def span(trace: str, span_id: str, parent: str, name: str, start: float, end: float, **attrs):
    return ReceivedSpan(
        service="web",
        name=name,
        trace_id=trace,
        span_id=span_id,
        parent_id=parent,
        start_ns=int(start * MS),
        end_ns=int(end * MS),
        attributes=attrs,
    )


def message(trace: str, at: float, request_id: str) -> list[ReceivedSpan]:
    """One message's spans, `at` ms into the clock: the frame, two Redis commands, the
    preparation, the engine (longer than the first text) and the first text."""
    return [
        span(trace, "a", "", "ws chat.send", at + 1, at + 20, **{"chat.request_id": request_id}),
        span(trace, "b", "a", "EVALSHA", at + 5, at + 7),
        span(trace, "c", "a", "EVALSHA", at + 9, at + 12),
        span(trace, "d", "a", "generation.prepare", at + 30, at + 40),
        span(trace, "e", "d", "engine.generate", at + 41, at + 900),
        span(trace, "f", "e", FIRST_TEXT, at + 90, at + 95),
        span(trace, "g", "e", "XADD", at + 200, at + 201),  # a later delta: off the path
    ]


def test_rows_time_each_span_from_the_clients_send_and_stop_at_the_first_text():
    spans = message("t1", 1000, "r1") + message("t2", 2000, "r2")
    sends = {"r1": (1000 * MS, 1100 * MS), "r2": (2000 * MS, 2100 * MS)}

    table, messages = rows(spans, [(0, 3000 * MS)], sends)

    assert messages == 2
    by_name = {r.name: r for r in table}
    assert "XADD" not in by_name
    assert (by_name["EVALSHA"].per_message, by_name["EVALSHA"].first_start_ms) == (2, 5)
    assert (by_name["EVALSHA"].last_end_ms, by_name["EVALSHA"].total_ms) == (12, 5)
    # The engine's span is cut at the first text's end.
    assert by_name["engine.generate"].last_end_ms == 95
    assert by_name["client: first delta"].first_start_ms == 100
    assert table[0].name == "ws chat.send"
    assert "| generation.prepare | 1 | 30.0 | 40.0 | 10.0 |" in render(table, messages, "t")


def test_rows_keep_only_traces_that_start_in_a_window_and_reached_a_first_text():
    refused = [span("t3", "a", "", "ws chat.send", 5000, 5010)]
    spans = message("t1", 1000, "r1") + message("t2", 9000, "r2") + refused

    table, messages = rows(spans, [(0, 6000 * MS)])

    assert messages == 1
    # Without the client's marks the clock starts at the root span.
    assert {r.name: r.first_start_ms for r in table}["EVALSHA"] == 4
