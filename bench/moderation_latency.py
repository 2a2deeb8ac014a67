"""Latency of each moderation check and of the streaming hold-back.

    .venv/bin/python bench/moderation_latency.py [--repeat 200] [--semantic-output]
    .venv/bin/python bench/moderation_latency.py --concurrency 1,16 [--messages 320]

Prints µs per call for every built-in check on a short text (~60 characters), a streamed
window (~200 characters) and a 2,000-character text, and for the whole input pipeline; then,
for streamed output, the time each window check adds (the CPU time `feed` spends when a window
completes) and, at a steady generation rate, how long each character waits between being
generated and being released. Runs without a database: admin rules are a fixed set of 50 word
and 10 regex rules. `--semantic-output` also runs the semantic check on output (off by
default), for the streamed numbers.

`--concurrency 1,16` measures something else: p50 and p99 of each check's time, and of the
whole input pipeline, while that many messages are checked at once (one thread each, as the
web process's pool does), over the texts of `eval.jsonl` and `eval_holdout*.jsonl` that are not
to be blocked.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHORT = "Can you explain how to kill a zombie process in Linux, please?"
PARAGRAPH = (
    "The quick brown fox jumps over the lazy dog while the engineers review the deployment "
    "plan. Nothing in this text should be flagged; it is ordinary prose with numbers like "
    "2024 and version 3.1.4, and a question: how do we scale the web tier? "
)
LONG = (PARAGRAPH * 20)[:2000]
WINDOW = (PARAGRAPH * 2)[:200]
ANSWER = (
    "Sure! Here is an overview of how processes work on Linux. Every process has a parent, and "
    "when a child exits it becomes a zombie until the parent reads its status. You can list "
    "them with ps and look for the Z state.\n\n```bash\nps -eo pid,ppid,stat,cmd | awk '$3 ~ /Z/'\n"
    "kill -s SIGCHLD <parent-pid>\n```\n\nIf the parent never reaps them, restarting the parent "
    "clears them. Let me know if you want a script that does this automatically. "
) * 6


def _time_call(func: Callable[[], object], repeat: int) -> float:
    func()  # warm up (imports, caches)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _eval_texts() -> list[str]:
    """The evaluation sets' texts that are not to be blocked: every check runs on them, as on
    most real traffic (a blocked text stops at the first check that blocks it)."""
    texts: list[str] = []
    data = ROOT / "moderation" / "data"
    for path in [data / "eval.jsonl", *sorted(data.glob("eval_holdout*.jsonl"))]:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line]
        texts += [row["text"] for row in rows if row["label"] != "block"]
    return texts


def concurrent_latency(levels: list[int], messages: int) -> None:
    """p50/p99 per check and for the whole pipeline with `level` messages checked at once."""
    from moderation import pipeline, registry, state
    from moderation.normalize import normalize
    from moderation.types import Direction

    pipeline.warm()
    texts = _eval_texts()
    checks = registry.configured_checks(state.snapshot())
    samples: dict[str, list[float]] = defaultdict(list)
    lock = threading.Lock()
    originals = {}
    for configured in checks:
        check = configured.check
        originals[configured.name] = check.evaluate

        def timed(text: str, *, direction: Direction, _name: str = configured.name) -> object:
            started = time.perf_counter()
            try:
                return originals[_name](text, direction=direction)
            finally:
                with lock:
                    samples[_name].append(time.perf_counter() - started)

        check.evaluate = timed  # type: ignore[method-assign]

    def one(text: str) -> None:
        started = time.perf_counter()
        pipeline.run(text, direction=Direction.INPUT)
        with lock:
            samples["**whole input pipeline**"].append(time.perf_counter() - started)

    names = [c.name for c in checks] + ["**whole input pipeline**"]
    print(f"\n{messages} harmless messages per level; ms per call (p50 / p99)\n")
    print("| check | " + " | ".join(f"{n} at once" for n in levels) + " |")
    print("| --- | " + " | ".join("---" for _ in levels) + " |")
    results: dict[int, dict[str, tuple[float, float]]] = {}
    for level in levels:
        samples.clear()
        normalize.cache_clear()
        batch = [texts[i % len(texts)] for i in range(messages)]
        with ThreadPoolExecutor(max_workers=level) as pool:
            list(pool.map(one, batch))
        results[level] = {
            name: (_percentile(s, 0.5) * 1000, _percentile(s, 0.99) * 1000)
            for name, s in samples.items()
        }
    for name in names:
        cells = []
        for level in levels:
            p50, p99 = results[level].get(name, (0.0, 0.0))
            cells.append(f"{p50:.1f} / {p99:.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    for configured in checks:
        configured.check.evaluate = originals[configured.name]  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--semantic-output", action="store_true")
    parser.add_argument(
        "--concurrency", default="", help="e.g. 1,16: p50/p99 per check at these levels only"
    )
    parser.add_argument("--messages", type=int, default=320)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    if args.semantic_output:
        os.environ["MODERATION_SEMANTIC_DIRECTIONS"] = "input,output"
    import django

    django.setup()
    from moderation import pipeline, registry, state
    from moderation.normalize import normalize
    from moderation.regexes import compile_pattern, word_pattern
    from moderation.streaming import OutputModerator
    from moderation.types import Direction

    word_rules = [
        state.CompiledRule(
            i, compile_pattern(word_pattern(f"bannedword{i}")), f"w{i}", ("test",), "block", "both"
        )
        for i in range(50)
    ]
    regex_rules = [
        state.CompiledRule(
            100 + i, compile_pattern(rf"promo-?code\s*{i}\d{{3}}"), "re", ("spam",), "block", "both"
        )
        for i in range(10)
    ]
    state.pin(state.Snapshot(version=1, rules=(*word_rules, *regex_rules)))
    if args.concurrency:
        concurrent_latency([int(n) for n in args.concurrency.split(",")], args.messages)
        state.reset_local()
        return

    def timed(evaluate: Callable[[str], object]) -> tuple[float, float, float]:
        def call(text: str) -> Callable[[], object]:
            def run() -> object:
                normalize.cache_clear()  # each measurement pays for its own normalisation
                return evaluate(text)

            return run

        return (
            _time_call(call(SHORT), args.repeat),
            _time_call(call(WINDOW), args.repeat),
            _time_call(call(LONG), args.repeat),
        )

    rows: list[tuple[str, tuple[float, float, float]]] = []
    for configured in registry.configured_checks(state.snapshot()):
        check = configured.check
        rows.append((configured.name, timed(partial(check.evaluate, direction=Direction.INPUT))))
    rows.append(("normalize (shared by checks)", timed(normalize)))
    rows.append(
        ("**whole input pipeline**", timed(partial(pipeline.run, direction=Direction.INPUT)))
    )
    print(f"median of {args.repeat} calls; µs per call\n")
    print("| check | short (~60 chars) | window (200 chars) | 2,000 chars |")
    print("| --- | --- | --- | --- |")
    for name, (short_us, window_us, long_us) in rows:
        print(f"| {name} | {short_us:,.0f} | {window_us:,.0f} | {long_us:,.0f} |")

    # Streaming: feed ~4-character deltas (about one token each) and time every feed call
    # that completed a window.
    window_costs: list[float] = []
    for _ in range(5):
        moderator = OutputModerator(user_id=None, conversation_id=None, generation_id=None)
        for i in range(0, len(ANSWER), 4):
            started = time.perf_counter()
            released = moderator.feed(ANSWER[i : i + 4])
            if released:
                window_costs.append(time.perf_counter() - started)
        moderator.finish()
    window_costs.sort()
    median_ms = statistics.median(window_costs) * 1000
    p95_ms = window_costs[int(len(window_costs) * 0.95)] * 1000

    # Waiting time per character at a steady rate: a character generated at t_gen is released
    # when its window is complete and checked.
    rates = (30, 120)
    waits: dict[int, list[float]] = {}
    for tokens_per_second in rates:
        chars_per_second = tokens_per_second * 4
        moderator = OutputModerator(user_id=None, conversation_id=None, generation_id=None)
        clock = 0.0
        gen_times: list[float] = []
        delays: list[float] = []
        for i in range(0, len(ANSWER), 4):
            delta = ANSWER[i : i + 4]
            clock += len(delta) / chars_per_second
            gen_times += [clock] * len(delta)
            started = time.perf_counter()
            released = moderator.feed(delta)
            cost = time.perf_counter() - started
            for _ in released:
                delays.append(clock + cost - gen_times[len(delays)])
        waits[tokens_per_second] = delays

    print(f"\nstreamed output ({len(window_costs)} windows, ~4-character deltas):\n")
    print("| measure | median | p95 |")
    print("| --- | --- | --- |")
    print(f"| check time added per window | {median_ms:.1f} ms | {p95_ms:.1f} ms |")
    for tokens_per_second, delays in waits.items():
        delays.sort()
        print(
            f"| hold-back wait per character at {tokens_per_second} tokens/s | "
            f"{statistics.median(delays) * 1000:.0f} ms | "
            f"{delays[int(len(delays) * 0.95)] * 1000:.0f} ms |"
        )
    verdict = "met" if median_ms <= 100 else "NOT met"
    print(f"\ntarget: check time per window <= 100 ms at the median: {verdict}")
    state.reset_local()


if __name__ == "__main__":
    main()
