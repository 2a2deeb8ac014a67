"""Raw engine benchmark: vLLM `AsyncLLM` alone, N concurrent streams of a fixed length.

The reference the pipeline is judged against (its tokens/s at 16 streams should be at least
0.95 of this). Usage:

    python bench/engine.py                       # concurrency 1,4,16,32, 64 tokens each
    python bench/engine.py --concurrency 16 --tokens 128 --model-dir DIR

`start_engine` and `run_streams` are reusable by other benchmarks (the pipeline benchmark).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The engine's options are the project's settings (INFERENCE_*, from the environment).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from inference.engine import (  # noqa: E402
    EngineSpec,
    engine_args,
    engine_process_environment,
    engine_stat_loggers,
    prepare_environment,
)

DEFAULT_MODEL_DIR = ROOT / "var" / "models" / "smollm2-135m-instruct"
PROMPT = "Write a long story about a lighthouse keeper and a storm."


@dataclass
class StreamsResult:
    concurrency: int
    tokens_per_stream: int
    total_tokens: int
    seconds: float
    tokens_per_second: float
    ttft_median_ms: float
    ttft_p99_ms: float


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def start_engine(model_dir: str | Path = DEFAULT_MODEL_DIR, **overrides: Any) -> Any:
    """An `AsyncLLM` for the prepared model directory. Call it inside a running loop (so its
    output handler binds to that loop) and `engine.shutdown()` when done."""
    from vllm.v1.engine.async_llm import AsyncLLM

    prepare_environment()
    spec = EngineSpec(name="bench", weights=str(model_dir), max_model_len=2048)
    # With the worker's stat loggers (vLLM's metrics, INFERENCE_ENGINE_METRICS), as it runs.
    with engine_process_environment():
        return AsyncLLM.from_engine_args(
            engine_args(spec, **overrides), stat_loggers=engine_stat_loggers()
        )


def prompt_ids(engine: Any, text: str = PROMPT) -> list[int]:
    tokenizer = engine.get_tokenizer()
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )
    return list(tokenizer.encode(rendered, add_special_tokens=False))


async def one_stream(
    engine: Any, ids: list[int], tokens: int, sampling: dict[str, float] | None = None
) -> tuple[float, int]:
    """(seconds to the first token, tokens received) for one fixed-length stream."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    params = SamplingParams(
        max_tokens=tokens,
        ignore_eos=True,
        output_kind=RequestOutputKind.DELTA,
        **{"temperature": 0.8, **(sampling or {})},
    )
    started = time.perf_counter()
    first: float | None = None
    received = 0
    async for output in engine.generate(
        {"prompt_token_ids": ids}, params, f"bench-{uuid.uuid4().hex}"
    ):
        received += len(output.outputs[0].token_ids)
        if first is None and received:
            first = time.perf_counter() - started
    return (first or 0.0), received


async def run_streams(
    engine: Any, *, concurrency: int, tokens: int, sampling: dict[str, float] | None = None
) -> StreamsResult:
    """`sampling`: SamplingParams fields (temperature, top_p, min_p); default temperature 0.8."""
    ids = prompt_ids(engine)
    started = time.perf_counter()
    results = await asyncio.gather(
        *(one_stream(engine, ids, tokens, sampling) for _ in range(concurrency))
    )
    seconds = time.perf_counter() - started
    total = sum(received for _, received in results)
    ttfts = [ttft * 1000 for ttft, _ in results]
    return StreamsResult(
        concurrency=concurrency,
        tokens_per_stream=tokens,
        total_tokens=total,
        seconds=round(seconds, 3),
        tokens_per_second=round(total / seconds, 1),
        ttft_median_ms=round(statistics.median(ttfts), 1),
        ttft_p99_ms=round(percentile(ttfts, 0.99), 1),
    )


async def main(args: argparse.Namespace) -> list[StreamsResult]:
    started = time.perf_counter()
    engine = start_engine(args.model_dir)
    print(f"engine started in {time.perf_counter() - started:.1f}s", flush=True)
    results = []
    try:
        await run_streams(engine, concurrency=2, tokens=8)  # warm-up
        for concurrency in args.concurrency:
            result = await run_streams(
                engine,
                concurrency=concurrency,
                tokens=args.tokens,
                sampling={"top_p": args.top_p, "min_p": args.min_p},
            )
            results.append(result)
            print(
                f"streams={concurrency:3d}  tokens/s={result.tokens_per_second:8.1f}  "
                f"ttft median={result.ttft_median_ms:7.1f} ms  p99={result.ttft_p99_ms:7.1f} ms",
                flush=True,
            )
    finally:
        engine.shutdown()
        # Collected now, while the interpreter is whole: AsyncLLM.__del__ calls shutdown again.
        del engine
        gc.collect()
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--concurrency",
        type=lambda value: [int(part) for part in value.split(",")],
        default=[1, 4, 16, 32],
        help="comma-separated stream counts (default 1,4,16,32)",
    )
    parser.add_argument("--tokens", type=int, default=64, help="tokens per stream (default 64)")
    # The defaults are the default model's in the registry (inference/migrations/0004).
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (1.0: off)")
    parser.add_argument("--min-p", type=float, default=0.05, help="min-p sampling (0: off)")
    parser.add_argument("--model-dir", default=os.environ.get("BENCH_MODEL_DIR", DEFAULT_MODEL_DIR))
    parser.add_argument("--json", help="also write the results to this file")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    measured = asyncio.run(main(arguments))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps([asdict(r) for r in measured], indent=2))
