"""The automatic router (`model: "auto"`) on a labelled routing set: accuracy per route of the
by-task classifier, and the latency the router adds per message under each policy.

    .venv/bin/python bench/router.py [--set bench/data/routing_set.jsonl] [--repeat 3]

Reads the routes (names, models, example utterances) and the policy's `min_similarity` from
the database in DATABASE_URL (`manage.py migrate` seeds three routes; an admin edits them), and
the set's prompts, each labelled with the route it should take (`{"text", "route"}` a line;
written apart from the routes' examples). A prompt whose nearest example is below
`min_similarity` counts as "no route" (a miss).

The latency is the router's whole decision per message, one stream: the registry and policy
(cached, as in the web process), the workers' liveness and the queues' waiting and running
counts read from Redis (REDIS_URL), and for by-task the MiniLM embedding of the message and
the comparison with the examples. The router only reads the workers' liveness keys, so the
run writes, in REDIS_URL's database, one liveness entry per enabled model's queue for a
made-up worker ("bench-router"), removed at the end; no engine is involved. Targets: p50
under 5 ms. Prints the machine's CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BENCH_WORKER = "bench-router"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", default=str(REPO / "bench/data/routing_set.jsonl"))
    parser.add_argument("--repeat", type=int, default=3, help="passes over the set per policy")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import logging

    logging.getLogger("chat.model_router").setLevel(logging.WARNING)
    from accounts.plans import PlanLimits
    from chat import model_router, route_embedding
    from chat.redis_client import redis_client
    from config.health import LIVE_WORKERS_KEY
    from moderation.checks.embedders import MINILM, get_embedder

    rows = [json.loads(line) for line in Path(args.set).read_text().splitlines() if line.strip()]
    model_router.forget()
    state = model_router.config()
    policy = state.policy
    if not policy.routes:
        print("no enabled routes in the database: run manage.py migrate, or add routes")
        return 1

    # --- accuracy ---
    print(f"CPU: {cpu_name()}; {os.cpu_count()} cores; set: {args.set} ({len(rows)} prompts)")
    print(f"routes: {', '.join(f'{r.name} -> {r.model}' for r in policy.routes)}")
    print(f"min_similarity: {policy.min_similarity}")
    embedders = {
        "full MiniLM": get_embedder(MINILM).encode,
        "static MiniLM table": route_embedding.ready().encode,
    }
    for label, encode in embedders.items():
        accuracy_table(label, model_router.Classifier(policy.routes, encode), rows, policy)

    # --- latency ---
    client = redis_client()
    queues = [c.info.queue for c in state.candidates]
    client.set(
        f"{model_router.WORKER_KEY_PREFIX}{BENCH_WORKER}",
        json.dumps({"queues": queues, "pid": os.getpid(), "at": time.time()}),
        ex=600,
    )
    client.zadd(LIVE_WORKERS_KEY, {BENCH_WORKER: time.time() + 600})
    plan = PlanLimits(
        plan="bench",
        messages_per_minute=0,
        daily_messages=0,
        monthly_token_budget=0,
        concurrent_generations=0,
        max_output_tokens=None,
        allowed_models=(),
        priority=0,
    )
    try:
        print(f"\nadded latency per message, one stream (ms; by_task with {embedder_name()})\n")
        print("| policy | p50 | p95 | max | models chosen |")
        print("| --- | --- | --- | --- | --- |")
        for strategy in (model_router.CHEAPEST, model_router.FASTEST, model_router.BY_TASK):
            model_router._config = dataclasses.replace(
                state,
                policy=dataclasses.replace(policy, strategy=strategy),
                read_at=time.monotonic(),
            )
            model_router.route(plan=plan, texts=["warm up"], message="warm up")
            samples, chosen = [], Counter()
            for _ in range(args.repeat):
                for row in rows:
                    model_router._config = dataclasses.replace(
                        model_router._config, read_at=time.monotonic()
                    )
                    began = time.perf_counter()
                    choice = model_router.route(plan=plan, texts=[row["text"]], message=row["text"])
                    samples.append((time.perf_counter() - began) * 1000)
                    chosen[choice.model.name] += 1
            samples.sort()
            print(
                f"| {strategy} | {statistics.median(samples):.2f} "
                f"| {samples[int(0.95 * (len(samples) - 1))]:.2f} | {samples[-1]:.2f} "
                f"| {', '.join(f'{k} {v}' for k, v in sorted(chosen.items()))} |"
            )
    finally:
        client.delete(f"{model_router.WORKER_KEY_PREFIX}{BENCH_WORKER}")
        client.zrem(LIVE_WORKERS_KEY, BENCH_WORKER)
    return 0


def accuracy_table(label: str, classifier: Any, rows: list[dict], policy: Any) -> None:
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    similarities = []
    for row in rows:
        found, similarity = classifier.classify(row["text"])
        similarities.append(similarity)
        got = found.name if found and similarity >= policy.min_similarity else "no route"
        totals[row["route"]] += 1
        hits[row["route"]] += got == row["route"]
        confusion[row["route"]][got] += 1
    similarities.sort()
    print(
        f"\n{label}: similarity to the chosen route p10 {similarities[len(rows) // 10]:.2f}, "
        f"p50 {statistics.median(similarities):.2f}\n"
    )
    print("| route | prompts | correct | accuracy | taken instead |")
    print("| --- | --- | --- | --- | --- |")
    for name in sorted(totals):
        wrong = ", ".join(f"{k} {v}" for k, v in confusion[name].most_common() if k != name)
        print(
            f"| {name} | {totals[name]} | {hits[name]} | {hits[name] / totals[name]:.2f} "
            f"| {wrong or '-'} |"
        )
    print(
        f"| all | {sum(totals.values())} | {sum(hits.values())} | "
        f"{sum(hits.values()) / sum(totals.values()):.2f} | |"
    )


def embedder_name() -> str:
    from chat import route_embedding

    return route_embedding.encoder().name


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
