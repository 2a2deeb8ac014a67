"""The guard-model check against a real vLLM server: latency, batching, failure modes.

    .venv/bin/python bench/guard.py [--file moderation/data/eval_blind_m.jsonl]
        [--concurrency 1 16] [--url http://host:8000/v1 --model NAME --prompt FILE|""]

Without `--url` it starts vLLM's OpenAI-compatible server on the prepared default model
(SmolLM2-135M-Instruct, `manage.py prepare_model`) and asks it with the shipped classification
prompt (moderation/data/guard_prompt.json), the stand-in for guard weights that cannot be
downloaded here. With `--url` it measures an endpoint already running (Llama Guard on a GPU
host: `--prompt ""`, its chat template carries the policy).

Prints, per concurrency (that many messages checked at once, one thread each, as the web
process's pool does): p50 and p99 of one check's time, checks per second, and the most requests
the server ran at once (sampled from its /metrics: the batching). Then what the check decides on
the set (precision and recall at the default threshold, 0.5; the served 135M model is no
classifier, and this shows it), and the failure modes: a timeout, the server gone (connection
refused), and the circuit breaker open after repeated failures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUNNING = re.compile(r"^vllm:num_requests_running\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)


class RunningSampler:
    """Polls the server's `vllm:num_requests_running` every 20 ms; `peak` is the most seen."""

    def __init__(self, metrics_url: str) -> None:
        self.url = metrics_url
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RunningSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=1) as response:  # noqa: S310
                    text = response.read().decode()
                self.peak = max([self.peak, *(float(v) for v in RUNNING.findall(text))])
            except OSError:
                pass
            self._stop.wait(0.02)


@dataclass
class Run:
    times: list[float] = field(default_factory=list)  # seconds per check call
    blocked: dict[int, bool] = field(default_factory=dict)  # by the text's index
    errors: int = 0
    wall: float = 0.0
    peak_running: float = 0.0


def measure(check: Any, texts: list[str], concurrency: int, metrics_url: str) -> Run:
    """Every text checked once, `concurrency` at a time."""
    from moderation.checks import CheckError
    from moderation.types import Action, Direction

    run = Run()
    lock = threading.Lock()

    def one(index: int) -> None:
        started = time.perf_counter()
        try:
            blocked = check.evaluate(texts[index], direction=Direction.INPUT).action is Action.BLOCK
        except CheckError:
            blocked = None
        with lock:
            run.times.append(time.perf_counter() - started)
            if blocked is None:
                run.errors += 1
            else:
                run.blocked[index] = blocked

    with RunningSampler(metrics_url) as sampler, ThreadPoolExecutor(concurrency) as pool:
        began = time.perf_counter()
        list(pool.map(one, range(len(texts))))
        run.wall = time.perf_counter() - began
    run.peak_running = sampler.peak
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=ROOT / "moderation/data/eval_blind_m.jsonl")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--url", help="an OpenAI-compatible endpoint already running (…/v1)")
    parser.add_argument("--model", default="guard", help="the served model's name")
    parser.add_argument(
        "--prompt", default=str(ROOT / "moderation/data/guard_prompt.json"),
        help='a classification prompt file; "" for a guard model (Llama Guard)',
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=30.0, help="the check's timeout (s)")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.conf import settings

    from bench.engine import percentile
    from inference.engine import resolved_dtype
    from inference.recipes import DEFAULT_MODEL, RECIPES
    from moderation.checks import CheckError
    from moderation.checks.guard import GuardModelCheck
    from moderation.types import Direction
    from tests.support.vllm_server import VllmServer, vllm_openai_server

    lines = [json.loads(line) for line in args.file.read_text().splitlines() if line.strip()]
    texts = [line["text"] for line in lines]
    server: VllmServer | None = None
    with ExitStack() as stack:
        url = args.url
        if url is None:
            weights = Path(settings.INFERENCE_MODEL_DIR) / RECIPES[DEFAULT_MODEL].target
            started = time.monotonic()
            server = stack.enter_context(
                vllm_openai_server(
                    weights, log_path=ROOT / "var" / "bench-guard-vllm.log", dtype=resolved_dtype()
                )
            )
            url = server.url
            print(
                f"vLLM's OpenAI server on {weights.name}: up in {time.monotonic() - started:.0f} s"
            )
        settings.MODERATION_GUARD_URL = url
        settings.MODERATION_GUARD_MODEL = args.model
        settings.MODERATION_GUARD_PROMPT_FILE = args.prompt
        settings.MODERATION_GUARD_TIMEOUT_SECONDS = args.timeout
        check = GuardModelCheck()
        check.evaluate("warm up", direction=Direction.INPUT)
        metrics = url.removesuffix("/v1") + "/metrics"

        print(f"\n{len(lines)} lines of {args.file.name}, one check call each\n")
        print(
            "| concurrency | p50 ms | p99 ms | checks/s | most requests running at once | errors |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        decisions: dict[int, bool] = {}
        for concurrency in args.concurrency:
            run = measure(check, texts, concurrency, metrics)
            decisions = run.blocked
            print(
                f"| {concurrency} | {percentile(run.times, 0.5) * 1000:.0f} | "
                f"{percentile(run.times, 0.99) * 1000:.0f} | {len(lines) / run.wall:.1f} | "
                f"{run.peak_running:.0f} | {run.errors} |"
            )

        harmful = [i for i, line in enumerate(lines) if line["label"] == "block"]
        harmless = [i for i, line in enumerate(lines) if line["label"] != "block"]
        caught = sum(decisions.get(i, False) for i in harmful)
        false_blocks = sum(decisions.get(i, False) for i in harmless)
        blocked = caught + false_blocks
        print(
            f"\nThe guard alone at threshold {check.threshold}: {caught} of {len(harmful)} to "
            f"block blocked, {false_blocks} of {len(harmless)} others blocked: precision "
            f"{caught / blocked if blocked else float('nan'):.2f}, recall "
            f"{caught / len(harmful):.2f}"
        )

        print("\nFailure modes (each a CheckError, decided by the failure policy):")
        settings.MODERATION_GUARD_TIMEOUT_SECONDS = 0.005  # far under any answer
        hurried = GuardModelCheck()
        started = time.perf_counter()
        try:
            hurried.evaluate(texts[0], direction=Direction.INPUT)
            print("- a 5 ms timeout: the server answered in time (no failure)")
        except CheckError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            print(f"- a 5 ms timeout: failed after {elapsed:.0f} ms ({exc})")
        if server is not None:
            server.stop()
            for attempt in range(settings.MODERATION_GUARD_BREAKER_FAILURES + 1):
                started = time.perf_counter()
                try:
                    check.evaluate("a message", direction=Direction.INPUT)
                except CheckError as exc:
                    state = "open" if check.breaker.is_open else "closed"
                    print(
                        f"- server gone, call {attempt + 1}: failed after "
                        f"{(time.perf_counter() - started) * 1000:.1f} ms, circuit then {state} "
                        f"({str(exc)[:70]})"
                    )


if __name__ == "__main__":
    main()
