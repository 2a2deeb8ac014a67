"""Where the first token's time goes, from the stack's own traces.

`bench/pipeline.py --trace` points every process of its stack at an in-process OTLP receiver
(`tests.support.otlp`) and hands the spans it received here. Each measured message is one
trace; its clock starts at the client's send (the websocket's `chat.send`, matched by its
request id) or, where the client is not known (the API), at the trace's root span. Only the
spans that start before the first text is published (`generation.first_text` ends) count:
after it come the stream's own per-token writes, which are not on the first token's path.

Per span name the table gives, as medians over the messages: how many such spans a message
has, when the first of them starts and when the last ends (ms from the clock's start), and
their summed duration. The processes share one machine's wall clock, so their times compare.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FIRST_TEXT = "generation.first_text"


@dataclass(frozen=True)
class Row:
    name: str
    per_message: float
    first_start_ms: float
    last_end_ms: float
    total_ms: float


def _root(spans: Sequence[Any]) -> Any | None:
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if not s.parent_id or s.parent_id not in ids]
    return min(roots, key=lambda s: s.start_ns) if roots else None


def rows(
    spans: Iterable[Any],
    windows: Sequence[tuple[int, int]],
    sends: Mapping[str, tuple[int, int]] | None = None,
) -> tuple[list[Row], int]:
    """(one row per span name, the number of messages) for the traces whose root starts inside
    one of `windows` (wall-clock ns). `sends`: request id → (client's send, client's first
    delta), wall-clock ns; a row "client: first delta" is added when any trace matched one."""
    sends = sends or {}
    traces: dict[str, list[Any]] = defaultdict(list)
    for span in spans:
        traces[span.trace_id].append(span)
    # Per span name, one (spans, first start, last end, summed duration) per message.
    samples: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    messages = 0
    for trace in traces.values():
        root = _root(trace)
        if root is None or not any(a <= root.start_ns <= b for a, b in windows):
            continue
        first_text = [s for s in trace if s.name == FIRST_TEXT]
        if not first_text:
            continue  # refused, or the stream never wrote: no first token to explain
        cutoff = first_text[0].end_ns
        request_ids = {s.attributes.get("chat.request_id") for s in trace} & sends.keys()
        send = sends[request_ids.pop()] if request_ids else None
        origin = send[0] if send else root.start_ns
        messages += 1
        by_name: dict[str, list[Any]] = defaultdict(list)
        for span in trace:
            if span.start_ns <= cutoff:
                by_name[span.name].append(span)
        for name, group in by_name.items():
            samples[name].append(
                (
                    len(group),
                    (min(s.start_ns for s in group) - origin) / 1e6,
                    (max(min(s.end_ns, cutoff) for s in group) - origin) / 1e6,
                    sum(min(s.end_ns, cutoff) - s.start_ns for s in group) / 1e6,
                )
            )
        if send:
            arrived = (send[1] - origin) / 1e6
            samples["client: first delta"].append((1, arrived, arrived, 0.0))
    table = [
        Row(name, *(statistics.median(column) for column in zip(*measured, strict=True)))
        for name, measured in samples.items()
    ]
    table.sort(key=lambda r: (r.first_start_ms, r.last_end_ms))
    return table, messages


def render(table: Sequence[Row], messages: int, title: str) -> str:
    lines = [
        f"\n{title}: {messages} messages; ms from the client's send (websocket) or the "
        "request's root span (API), medians",
        "| span | per message | first starts | last ends | summed duration |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.name} | {r.per_message:g} | {r.first_start_ms:.1f} | {r.last_end_ms:.1f} "
        f"| {r.total_ms:.1f} |"
        for r in table
    ]
    return "\n".join(lines)
