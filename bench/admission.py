"""Admission under a burst: how long until `chat.accepted` when many users press Enter at once.

    flock /tmp/heavy.lock .venv/bin/python bench/admission.py [--concurrency 1 16 32] \
        [--rounds 5] [--bf16 auto|on|off] [--threads 1]

Issue 14, part 8: `chat.accepted` p50 under 50 ms with 32 simultaneous sends. What comes before
`chat.accepted` is all on the web side (limits, input moderation with its embeddings, the store
writes, the enqueue), so this starts Daphne alone, as `bench/abuse.py` does (its own
PostgreSQL database `chat_abuse`, Redis database 12, an embedded store in a temporary folder,
DEBUG off, the default moderation checks with the consumer's embedding prefetch), with the
message limits raised so that nothing is refused. The tasks are enqueued for a worker that
does not run: the engine's work is not part of admission.

For each concurrency N: N users, one connection each, opened before the clock starts. Each
round, all N send a different short question at the same moment (a new conversation each);
the time from the send to its `chat.accepted` is recorded. Prints p50/p99/max per N, the web
process's CPU time per send during the bursts (on 2 cores, a burst of N cannot have its
median accepted sooner than about N/2 sends' CPU over the 2 cores: the floor any change must
lower), what else came back (refusals), the server's MiniLM precision (`--bf16`, passed as
`MODERATION_SEMANTIC_BF16`), its admission threads (`--threads`, `CHAT_ADMISSION_THREADS`) and
the machine. Exits 1 when the 32-stream p50 misses 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.abuse import cpu_seconds, machine, percentile, start_web, users  # noqa: E402

TARGET_P50_MS = 50.0
TARGET_AT = 32
QUESTIONS = [
    "What is a good name for a grey cat?",
    "How do I boil an egg so the yolk stays soft?",
    "Explain photosynthesis to a ten year old.",
    "Write a haiku about autumn rain.",
    "What's the difference between a list and a tuple in Python?",
    "Suggest three books like The Hobbit.",
    "How far is the Moon from the Earth?",
    "Translate 'good morning' into Italian.",
    "Why is the sky blue?",
    "Give me a packing list for a weekend hike.",
    "What does a product manager do all day?",
    "How can I get better sleep?",
    "Summarise the plot of Romeo and Juliet in two sentences.",
    "What is the capital of Canada?",
    "Help me write a polite email asking for a deadline extension.",
    "Which houseplants survive in low light?",
    "How does compound interest work?",
    "Recommend a beginner workout for three days a week.",
    "What causes the seasons?",
    "Write a limerick about a forgetful robot.",
    "How do I center a div in CSS?",
    "What are some easy vegetarian dinners?",
    "Explain what an API is.",
    "Why do cats purr?",
    "How do vaccines train the immune system?",
    "Plan a three-day trip to Lisbon.",
    "What is the Pythagorean theorem?",
    "How do I remove a red wine stain from a carpet?",
    "Tell me a fun fact about octopuses.",
    "What's a good way to learn a new language?",
    "How do solar panels make electricity?",
    "Name five famous painters of the Renaissance.",
]
LIMITS = {
    "CHAT_RATE_PER_MINUTE": "0",
    "CHAT_DAILY_MESSAGE_QUOTA": "0",
    "CHAT_MAX_CONCURRENT_GENERATIONS": "1000",
    "CHAT_MAX_QUEUE_DEPTH": "1000000",
}


async def burst(sessions: list, round_number: int) -> tuple[list[float], Counter[str]]:
    async def one(index: int, session: object) -> tuple[float, str]:
        question = QUESTIONS[index % len(QUESTIONS)]
        started = time.perf_counter()
        reply = await session.send(f"{question} ({round_number})", timeout=60)  # type: ignore[attr-defined]
        kind = reply["type"] if reply["type"] != "error" else f"error {reply.get('code')}"
        return time.perf_counter() - started, kind

    results = await asyncio.gather(*(one(i, s) for i, s in enumerate(sessions)))
    return [seconds for seconds, _ in results], Counter(kind for _, kind in results)


async def measure(
    base_url: str, concurrency: int, rounds: int, web_pid: int
) -> tuple[list[float], Counter, float]:
    """The seconds to each `chat.accepted`, the replies, and the web process's CPU seconds
    spent from each measured burst's sends to its last `chat.accepted` (not in the pauses)."""
    from chatclient.client import ChatClient

    tokens = await asyncio.to_thread(users, base_url, f"admit{concurrency}", concurrency)
    sessions = [await ChatClient(base_url, token=token).open() for token in tokens]
    seconds: list[float] = []
    kinds: Counter[str] = Counter()
    try:
        await burst(sessions, 0)  # warm-up: first use of each connection and of the models
        await asyncio.sleep(1.0)
        cpu = 0.0
        for number in range(1, rounds + 1):
            cpu_before = cpu_seconds(web_pid)
            took, came = await burst(sessions, number)
            cpu += cpu_seconds(web_pid) - cpu_before
            seconds += took
            kinds += came
            await asyncio.sleep(1.0)
    finally:
        for session in sessions:
            await session.close()
    return seconds, kinds, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 32])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bf16", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--threads", type=int, default=1, help="CHAT_ADMISSION_THREADS")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="admission-") as folder:
        stack = start_web(
            Path(folder),
            limits_off=True,
            extra_env={
                **LIMITS,
                "MODERATION_SEMANTIC_BF16": args.bf16,
                "CHAT_ADMISSION_THREADS": str(args.threads),
            },
        )
        try:
            print(
                f"machine: {machine()}; MODERATION_SEMANTIC_BF16={args.bf16}, "
                f"CHAT_ADMISSION_THREADS={args.threads}"
            )
            print(
                "| streams | sends | accepted p50 ms | p99 ms | max ms | web CPU per send ms "
                "| replies |"
            )
            print("| --- | --- | --- | --- | --- | --- | --- |")
            p50_at_target = None
            for concurrency in args.concurrency:
                seconds, kinds, cpu = asyncio.run(
                    measure(stack.base_url, concurrency, args.rounds, stack.processes["web"].pid)
                )
                ms = [s * 1000 for s in seconds]
                p50 = statistics.median(ms)
                if concurrency == TARGET_AT:
                    p50_at_target = p50
                if set(kinds) != {"chat.accepted"}:
                    print(f"web log (last lines):\n{stack.log('web')[-3000:]}")
                replies = ", ".join(f"{kind} {count}" for kind, count in kinds.most_common())
                print(
                    f"| {concurrency} | {len(ms)} | {p50:.0f} | {percentile(ms, 0.99):.0f} "
                    f"| {max(ms):.0f} | {cpu / len(ms) * 1000:.1f} | {replies} |"
                )
        except BaseException:
            print(f"web log (last lines):\n{stack.log('web')[-3000:]}")
            raise
        finally:
            stack.stop()
    if p50_at_target is None:
        return 0
    met = p50_at_target < TARGET_P50_MS
    print(
        f"target: chat.accepted p50 < {TARGET_P50_MS:.0f} ms at {TARGET_AT} sends: "
        f"{'met' if met else 'MISSED'} ({p50_at_target:.0f} ms)"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
