"""Two models served on one machine: each engine alone, then both at once, with vLLM's own
core binding or with a share of the cores each. Measures what `make run` does with
`INFERENCE_SERVE_MODELS` listing two models (docs/operations.md, "Models").

Both engines are hosted in this one process; vLLM runs each one's compute in processes of its
own (`VLLM::EngineCore`), so the compute is the same as with one worker per model, and the
memory reported is this process plus every engine process. Usage (run it under the machine
lock; it starts two engines):

    python bench/engines_together.py --bind auto     # vLLM's default binding
    python bench/engines_together.py --bind split    # engine i on core i
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench.engine import run_streams, start_engine  # noqa: E402

MODELS = ROOT / "var" / "models"
SAMPLING = {"top_p": 1.0, "min_p": 0.05}


def pss_mb(processes: list[Any]) -> int:
    import psutil

    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_full_info().pss
    return round(total / 2**20)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    import psutil

    from inference.engine import engine_children

    engines: dict[str, Any] = {}
    result: dict[str, Any] = {"bind": args.bind}
    try:
        for index, directory in enumerate(args.model_dirs):
            if args.bind == "split":
                os.environ["VLLM_CPU_OMP_THREADS_BIND"] = str(index % (os.cpu_count() or 1))
            started = time.perf_counter()
            engines[Path(directory).name] = start_engine(directory, max_model_len=2048)
            result[f"start_s.{Path(directory).name}"] = round(time.perf_counter() - started, 1)
        result["pss_mb.this_process"] = pss_mb([psutil.Process()])
        result["pss_mb.engine_processes"] = pss_mb(engine_children())
        for engine in engines.values():
            await run_streams(engine, concurrency=2, tokens=8)  # warm-up
        for name, engine in engines.items():
            alone = await run_streams(engine, concurrency=1, tokens=args.tokens, sampling=SAMPLING)
            result[f"alone_tokens_per_s.{name}"] = alone.tokens_per_second
        for streams in (1, 4):
            started = time.perf_counter()
            together = await asyncio.gather(
                *(
                    run_streams(e, concurrency=streams, tokens=args.tokens, sampling=SAMPLING)
                    for e in engines.values()
                )
            )
            seconds = time.perf_counter() - started
            for name, measured in zip(engines, together, strict=True):
                result[f"together_{streams}_tokens_per_s.{name}"] = measured.tokens_per_second
            total = sum(measured.total_tokens for measured in together)
            result[f"together_{streams}_tokens_per_s.total"] = round(total / seconds, 1)
    finally:
        for engine in engines.values():
            engine.shutdown()
        engines.clear()
        gc.collect()
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", choices=("auto", "split"), default="auto")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per stream (default 64)")
    parser.add_argument(
        "--model-dirs",
        nargs=2,
        default=[str(MODELS / "smollm2-135m-instruct"), str(MODELS / "gemma3-270m")],
        help="two prepared model directories (default: the two registered models)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    import django

    django.setup()
    print(json.dumps(asyncio.run(main(parse_args())), indent=2))
