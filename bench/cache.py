"""The response cache on the real stack: a hit against a miss, and the hit rate of a replayed
workload with repeats.

    .venv/bin/python bench/cache.py [--questions 10] [--requests 64] [--tokens 48]

Starts the stack (Daphne, a Celery worker hosting vLLM with the default model, PostgreSQL,
Redis; its own databases, `E2E_DATABASE` and `E2E_REDIS_DB` or `chat_bench_cache` and 13),
then:

1. Hit against miss: each of `--questions` distinct questions is asked twice in a row by one
   user over the websocket (temperature 0, `--tokens` max tokens): the first is generated,
   the second comes from the cache. Time to first token (send to first delta) and total time
   (send to done), median and worst, for both.
2. A replayed workload: `--requests` requests by 4 users over 12 questions, drawn with Zipf
   weights (a few popular questions, a long tail); a request is the question's usual wording
   (75%) or one of its paraphrases. Replayed three times on fresh cache entries (a new
   system prompt each time): exact cache per user (the default), exact and semantic per
   user, and exact and semantic shared. Prints the hit rate, the hits that could be (a request
   that repeats an earlier one of its partition, in wording or in meaning), the false hits
   (a cached answer to another question: the target is 0) and the saved tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Each question with paraphrases; none of them is in the calibration set.
WORKLOAD = [
    ["What is the capital of Norway?", "Which city is the capital of Norway?"],
    ["How do I make scrambled eggs?", "How do you make scrambled eggs?"],
    ["What is a neutron star?", "Can you explain what a neutron star is?"],
    ["How many strings does a violin have?", "How many strings are on a violin?"],
    ["Who wrote The Odyssey?", "Who is the author of The Odyssey?"],
    ["How do I split a string in Python?", "How can I split a Python string?"],
    ["What is the boiling point of milk?", "At what temperature does milk boil?"],
    ["Why do leaves change color in autumn?", "What makes leaves change colour in the fall?"],
    ["What is the capital of Sweden?", "Which city is Sweden's capital?"],
    ["How do I join two lists in Python?", "How can I concatenate two lists in Python?"],
    ["What is the largest desert in the world?", "Which desert is the biggest on Earth?"],
    ["How do I tie a tie?", "How do you tie a necktie?"],
]
USERS = 4


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    return f"{model}, {os.cpu_count()} cores"


@dataclass
class Timed:
    ttft: float
    total: float
    text: str
    cached: bool
    finish_reason: str


async def ask(session: Any, question: str, options: dict[str, Any]) -> Timed:
    loop = asyncio.get_running_loop()
    sent = loop.time()
    accepted = await session.send(question, options=options)
    if accepted.get("type") != "chat.accepted":
        raise RuntimeError(f"refused: {accepted}")
    result = await session.collect(accepted["generation_id"])
    done = loop.time()
    final = result.final or {}
    first = result.first_delta_at if result.first_delta_at is not None else done
    return Timed(
        ttft=first - sent,
        total=done - sent,
        text=final.get("text", ""),
        cached=bool(final.get("cached")),
        finish_reason=final.get("finish_reason", final.get("code", "")),
    )


def summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"median {statistics.median(ms):7.0f} ms, worst {ms[-1]:7.0f} ms"


async def hit_against_miss(client: Any, questions: int, tokens: int) -> None:
    options = {"temperature": 0, "max_tokens": tokens}
    misses: list[Timed] = []
    hits: list[Timed] = []
    async with client.connect() as session:
        for index in range(questions):
            question = f"{WORKLOAD[index % len(WORKLOAD)][0]} (run {uuid.uuid4().hex[:6]})"
            miss = await ask(session, question, options)
            hit = await ask(session, question, options)
            assert not miss.cached and hit.cached and hit.text == miss.text, (miss, hit)
            misses.append(miss)
            hits.append(hit)
    print(f"\n1. hit against miss ({questions} questions, temperature 0, max {tokens} tokens)")
    for label, runs in (("miss", misses), ("hit ", hits)):
        first, total = summary([r.ttft for r in runs]), summary([r.total for r in runs])
        print(f"   {label}: first token {first}; total {total}")
    speedup = statistics.median(m.total for m in misses) / statistics.median(h.total for h in hits)
    print(f"   median total time: the hit is {speedup:.1f}x faster")


def workload(requests: int, seed: int = 7) -> list[tuple[int, int, int]]:
    """(user, question group, wording) per request: Zipf over the groups, 75% usual wording."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(WORKLOAD))]
    rows = []
    for _ in range(requests):
        group = rng.choices(range(len(WORKLOAD)), weights)[0]
        wording = 0 if rng.random() < 0.75 else rng.randrange(1, len(WORKLOAD[group]))
        rows.append((rng.randrange(USERS), group, wording))
    return rows


async def replay(
    clients: list[Any],
    rows: list[tuple[int, int, int]],
    tokens: int,
    *,
    semantic: bool,
    shared: bool,
) -> dict[str, Any]:
    # A fresh system prompt: fresh cache entries (the prompt is part of every key).
    system = f"You are a helpful assistant. Session {uuid.uuid4().hex[:8]}."
    options = {"temperature": 0, "max_tokens": tokens, "system_prompt": system}
    seen: set[tuple[Any, ...]] = set()  # what each partition has been asked (wording, meaning)
    answers: dict[int, set[str]] = {}  # the texts generated per question group
    counts = {"hits": 0, "possible": 0, "false": 0, "exact_possible": 0}
    sessions = [await client.open() for client in clients]
    try:
        for user, group, wording in rows:
            partition = "shared" if shared else user
            exact = (partition, group, wording)
            meaning = (partition, group)
            could = exact in seen or (semantic and meaning in seen)
            counts["possible"] += could
            counts["exact_possible"] += exact in seen
            result = await ask(sessions[user], WORKLOAD[group][wording], options)
            if result.cached:
                counts["hits"] += 1
                if result.text not in answers.get(group, set()):
                    counts["false"] += 1
            else:
                answers.setdefault(group, set()).add(result.text)
            seen.update({exact, meaning})
    finally:
        for session in sessions:
            await session.close()
    return counts


def set_model(database_url: str, *, semantic: bool, shared: bool) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE inference_languagemodel SET semantic_cache = %s, cache_partition = %s",
            (semantic, "shared" if shared else "user"),
        )


def saved_tokens(database_url: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FILTER (WHERE cached), coalesce(sum(saved_tokens), 0)"
            " FROM inference_usagerecord"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=48)
    args = parser.parse_args()

    from chatclient.client import ChatClient
    from tests.support.stack import start_stack

    print(f"machine: {machine()}")
    stack = start_stack(
        workdir=Path(tempfile.mkdtemp(prefix="bench-cache-")),
        database=os.environ.get("E2E_DATABASE", "chat_bench_cache"),
        redis_db=int(os.environ.get("E2E_REDIS_DB", "13")),
        extra_env={"CHAT_RATE_PER_MINUTE": "100000", "CHAT_DAILY_MESSAGE_QUOTA": "100000"},
    )
    try:
        clients = []
        for _ in range(USERS):
            client = ChatClient(stack.base_url)
            client.register(f"bench-{uuid.uuid4().hex[:12]}@example.com", "bench passphrase 1234!")
            client.login()
            clients.append(client)
        asyncio.run(hit_against_miss(clients[0], args.questions, args.tokens))

        rows = workload(args.requests)
        shape = f"{len(rows)} requests, {USERS} users, {len(WORKLOAD)} questions"
        print(f"\n2. replayed workload: {shape}")
        model_cache_seconds = 31  # the worker re-reads the registry row every 30 s
        for label, semantic, shared in (
            ("exact, per user (default)", False, False),
            ("exact + semantic, per user", True, False),
            ("exact + semantic, shared", True, True),
        ):
            set_model(stack.env["DATABASE_URL"], semantic=semantic, shared=shared)
            time.sleep(model_cache_seconds)
            hits_before, saved_before = saved_tokens(stack.env["DATABASE_URL"])
            started = time.monotonic()
            counts = asyncio.run(
                replay(clients, rows, args.tokens, semantic=semantic, shared=shared)
            )
            seconds = time.monotonic() - started
            # The last usage records are written just after their done: wait for them.
            deadline = time.monotonic() + 15
            while True:
                hits_after, saved_after = saved_tokens(stack.env["DATABASE_URL"])
                if hits_after - hits_before >= counts["hits"] or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            print(
                f"   {label:28s} hit rate {counts['hits'] / len(rows):5.1%} "
                f"({counts['hits']} hits; {counts['possible']} repeats of an earlier request "
                f"in wording or meaning, {counts['exact_possible']} word for word), "
                f"false hits {counts['false']}, saved tokens {saved_after - saved_before:,}, "
                f"{seconds:.0f} s"
            )
            assert hits_after - hits_before == counts["hits"], "usage records disagree"
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
