"""The raw engine's memory under varied traffic: does vLLM's CPU worker level off? (issue 14)

The soak (`bench/soak.py`) found the model worker's tree growing 5-12 MB a minute, all of it
in vLLM's `VLLM::Worker` process. This drives `AsyncLLM` alone, with none of the platform, in
rounds of requests whose prompt lengths, answer lengths and concurrency vary as a soak's
conversations do, with a share of them aborted mid-stream (stops), and prints each engine
process's RSS after every round. Rounds are counted, not timed, so a busy machine gives the
same traffic, only slower. Run it under the settings to compare, for instance:

    python bench/engine_memory.py --rounds 150              # the project's settings
    INFERENCE_ONEDNN_PRIMITIVE_CACHE=default python bench/engine_memory.py --rounds 150
    MALLOC_MMAP_THRESHOLD_=65536 python bench/engine_memory.py --rounds 150

It prints the growth of each process from the end of the warm-up rounds to the end, and the
growth over the last third of the rounds (near zero once the process has levelled off).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench.engine import DEFAULT_MODEL_DIR, start_engine  # noqa: E402
from inference.engine import ONEDNN_CACHE_VARIABLE, engine_children  # noqa: E402

WORDS = (
    *("the", "storm", "lighthouse", "keeper", "harbour", "night", "wind", "boat", "rope"),
    *("lamp", "sea", "rock", "gull", "tide", "wave", "island", "fog", "bell", "captain"),
    *("cabin", "letter", "winter", "oil", "glass", "stair", "door", "salt"),
)


def engine_rss() -> dict[str, float]:
    """RSS in MB of each vLLM process this process started, by its title."""
    sizes: dict[str, float] = {}
    for child in engine_children():
        # A process that ended between the listing and the reading is left out.
        with contextlib.suppress(psutil.Error):
            name = " ".join(child.cmdline()) or child.name()
            sizes[name] = sizes.get(name, 0.0) + child.memory_info().rss / 2**20
    return sizes


async def one_request(engine: Any, rng: random.Random, max_prompt: int) -> None:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    words = rng.randint(4, max_prompt)
    prompt = " ".join(rng.choice(WORDS) for _ in range(words))
    tokens = rng.choice((1, 8, 32, 64, 128, 256))
    abort_after = rng.randint(1, tokens) if rng.random() < 0.25 else None
    params = SamplingParams(
        max_tokens=tokens,
        ignore_eos=rng.random() < 0.5,
        temperature=rng.choice((0.0, 0.7, 1.0)),
        min_p=0.05,
        output_kind=RequestOutputKind.DELTA,
    )
    received = 0
    request_id = f"memory-{uuid.uuid4().hex}"
    async for output in engine.generate(prompt, params, request_id):
        received += len(output.outputs[0].token_ids)
        if abort_after is not None and received >= abort_after:
            await engine.abort(request_id)
            break


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    started = time.perf_counter()
    engine = start_engine(args.model_dir)
    print(f"engine started in {time.perf_counter() - started:.1f}s", flush=True)
    from django.conf import settings

    env = {key: os.environ[key] for key in sorted(os.environ) if key.startswith(("MALLOC", "OMP"))}
    capacity = os.environ.get(ONEDNN_CACHE_VARIABLE, settings.INFERENCE_ONEDNN_PRIMITIVE_CACHE)
    shown = "oneDNN's default (1,024)" if capacity is None else capacity
    print(f"oneDNN kernel cache: {shown}; environment: {env}", flush=True)
    series: list[dict[str, float]] = []
    try:
        for round_number in range(1, args.rounds + 1):
            concurrency = rng.choice((1, 2, 4, 8, 16))
            await asyncio.gather(
                *(one_request(engine, rng, args.max_prompt_words) for _ in range(concurrency))
            )
            series.append(engine_rss())
            if round_number % args.every == 0:
                sizes = series[-1]
                line = ", ".join(f"{title.split()[0]} {mb:,.0f}" for title, mb in sizes.items())
                elapsed = time.perf_counter() - started
                print(f"round {round_number:4d} ({elapsed:5.0f} s): {line} MB", flush=True)
    finally:
        engine.shutdown()
        del engine
        gc.collect()
    report(series, args.warmup)


def report(series: list[dict[str, float]], warmup: int) -> None:
    if len(series) <= warmup:
        print("too few rounds for a report")
        return
    after_warmup, end = series[warmup - 1], series[-1]
    last_third = series[len(series) - len(series) // 3 - 1]
    print(f"\nRSS after warm-up (round {warmup}) -> end (round {len(series)}):")
    for title in end:
        first, last, third = after_warmup.get(title, 0), end[title], last_third.get(title, 0)
        growth = 100 * (last - first) / first if first else 0.0
        print(
            f"  {title.split()[0]}: {first:,.0f} -> {last:,.0f} MB ({growth:+.1f}%); "
            f"last third of the rounds {last - third:+,.0f} MB"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="rounds of requests (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="rounds before the baseline (30)")
    parser.add_argument("--every", type=int, default=10, help="print the RSS every N rounds (10)")
    parser.add_argument("--max-prompt-words", type=int, default=900, help="longest prompt (900)")
    parser.add_argument("--seed", type=int, default=14, help="the traffic's random seed (14)")
    parser.add_argument("--model-dir", default=os.environ.get("BENCH_MODEL_DIR", DEFAULT_MODEL_DIR))
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
