"""Answers of the served model to benign prompts, for measuring output moderation's false
blocks (`bench/moderation_eval.py --output moderation/data/output_benign_answers.jsonl`).

Starts the real engine (vLLM `AsyncLLM`, the default model), answers every prompt of
`moderation/data/output_benign_prompts.txt` with the default model's sampling (temperature
0.7, min-p 0.05, up to 256 new tokens, ending at the model's end of turn), 16 at a time, and
writes one JSON line per answer: {"prompt", "answer", "tokens", "finish_reason"}. Heavy: run
it under the machine lock.

    flock /tmp/heavy.lock .venv/bin/python bench/output_answers.py
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench.engine import DEFAULT_MODEL_DIR, prompt_ids, start_engine  # noqa: E402

PROMPTS_FILE = ROOT / "moderation" / "data" / "output_benign_prompts.txt"
ANSWERS_FILE = ROOT / "moderation" / "data" / "output_benign_answers.jsonl"


def load_prompts(path: Path = PROMPTS_FILE) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


async def answer(engine: Any, prompt: str, *, max_tokens: int) -> dict[str, Any]:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    params = SamplingParams(
        temperature=0.7, min_p=0.05, max_tokens=max_tokens, output_kind=RequestOutputKind.DELTA
    )
    parts: list[str] = []
    tokens = 0
    finish = None
    async for output in engine.generate(
        {"prompt_token_ids": prompt_ids(engine, prompt)}, params, f"answers-{uuid.uuid4().hex}"
    ):
        completion = output.outputs[0]
        parts.append(completion.text)
        tokens += len(completion.token_ids)
        finish = completion.finish_reason or finish
    return {"prompt": prompt, "answer": "".join(parts), "tokens": tokens, "finish_reason": finish}


async def main(args: argparse.Namespace) -> None:
    prompts = load_prompts()
    engine = start_engine(args.model_dir)
    started = time.perf_counter()
    gate = asyncio.Semaphore(args.concurrency)

    async def one(host: Any, prompt: str) -> dict[str, Any]:
        async with gate:
            return await answer(host, prompt, max_tokens=args.max_tokens)

    try:
        rows = await asyncio.gather(*(one(engine, p) for p in prompts))
    finally:
        engine.shutdown()
        del engine
        gc.collect()
    with args.out.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    tokens = sum(r["tokens"] for r in rows)
    print(
        f"{len(rows)} answers, {tokens} tokens in {time.perf_counter() - started:.0f} s "
        f"-> {args.out}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=os.environ.get("BENCH_MODEL_DIR", DEFAULT_MODEL_DIR))
    parser.add_argument("--out", type=Path, default=ANSWERS_FILE)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=256)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
