"""The pipeline benchmark: our whole path against the raw engine, in one run.

    .venv/bin/python bench/pipeline.py [--concurrency 1 4 16 32] [--tokens 64] [--rounds 3]
    .venv/bin/python bench/pipeline.py --new-conversations --streams-per-user 3 --churn 4 \
        --pipeline-only --concurrency 16 --rounds 100 --lost-after 30

1. The full pipeline: N websocket clients (bearer auth) through Daphne, moderation, the store,
   Celery and a worker hosting the engine, for the default model of the registry. With
   `--paths websocket openai`, the same rounds also go through the OpenAI-compatible API
   (`/v1/chat/completions`, streamed, with the official `openai` client and an API key each).
2. The raw engine: `AsyncLLM` in this process, N concurrent streams of the same fixed length,
   with the same prompt and the same sampling (temperature, and top-p and min-p as the
   registry gives them to the pipeline's requests).

Both are up at once (the raw engine sits idle while the pipeline runs, and the other way
round), and their rounds alternate, so that a drift in the machine's speed weighs on both sides
alike. It prints aggregate tokens/s and the pipeline/raw ratio, time to first token (median,
p99) for both, the gaps between deltas at the client (p50, p99), text mismatches
(concatenated deltas that differ from the final text) and lost streams (no closing message
within `--lost-after` seconds of the last frame; the target is 0). Run it on an otherwise idle
machine.

By default each client asks again in a conversation it opened and titled before the clock
starts, one client per user. `--new-conversations` measures what users do: every stream starts
a new conversation (so the model titles it afterwards, beside the next round's answers), and
`--streams-per-user K` gives each user K connections that all ask at once. `--churn N` keeps N
more connections (another user's) opening and closing during every round, as tabs and phones
come and go beside the streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROMPT = "Write a long story about a lighthouse keeper and a storm."
TEMPERATURE = 0.8
SETTLE_SECONDS = 1.0


@dataclass
class Run:
    tokens: int
    seconds: float
    ttfts: list[float]
    gaps: list[float]
    mismatches: int = 0
    lost: int = 0
    ttft_p99: float | None = None
    # Per stream, seconds from the round's start: accepted, first delta, last delta, done.
    timelines: list[tuple[float, float, float, float]] = field(default_factory=list)
    # CPU seconds this process (the clients) used in the round: on two cores the clients
    # share the machine with the server, and the official openai client costs more per token
    # than the websocket client.
    client_cpu: float = 0.0
    # CPU seconds the stack's own processes used in the round, by name: Daphne ("web") and the
    # Celery worker's process without its engine's ("worker"), which the raw side has no
    # counterpart of. Per token, they say what each path costs the server.
    server_cpu: dict[str, float] = field(default_factory=dict)
    # For `--trace`: the round's start and end, and each websocket stream's request id with
    # its send and first delta, wall-clock ns (the traces' clock).
    windows: list[tuple[int, int]] = field(default_factory=list)
    sends: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def merged(runs: list[Run]) -> Run:
    """Several rounds as one: their tokens over their time, every TTFT and gap."""
    return Run(
        tokens=sum(r.tokens for r in runs),
        seconds=sum(r.seconds for r in runs),
        ttfts=[t for r in runs for t in r.ttfts],
        gaps=[g for r in runs for g in r.gaps],
        mismatches=sum(r.mismatches for r in runs),
        lost=sum(r.lost for r in runs),
        ttft_p99=max((r.ttft_p99 for r in runs if r.ttft_p99 is not None), default=None),
        client_cpu=sum(r.client_cpu for r in runs),
        server_cpu={
            name: sum(r.server_cpu.get(name, 0.0) for r in runs)
            for name in {name for r in runs for name in r.server_cpu}
        },
        windows=[w for r in runs for w in r.windows],
        sends={k: v for r in runs for k, v in r.sends.items()},
    )


async def raw_round(engine: Any, n: int, tokens: int, sampling: dict[str, float]) -> Run:
    """One round of the raw engine (`AsyncLLM` in this process), with the engine benchmark's
    code: N concurrent streams of the same prompt and sampling as the pipeline's."""
    from bench.engine import run_streams

    result = await run_streams(engine, concurrency=n, tokens=tokens, sampling=sampling)
    return Run(
        tokens=result.total_tokens,
        seconds=result.seconds,
        ttfts=[result.ttft_median_ms / 1000] * n,
        gaps=[],
        ttft_p99=result.ttft_p99_ms / 1000,
    )


@dataclass
class Stream:
    tokens: int
    ttft: float
    gaps: list[float]
    mismatch: bool
    timeline: tuple[float, float, float, float]
    lost: bool = False
    # The websocket's request id, with the send and the first delta in wall-clock ns.
    send: tuple[str, int, int] | None = None


async def one_stream(
    session: Any, tokens: int, conversation_id: str | None, round_start: float, lost_after: float
) -> Stream:
    """One message on an open, authenticated connection, as a chat app sends it: the same
    prompt as the raw engine's, as a new first message of the client's conversation (the
    prompt stays one message long, and the conversation is titled already), or in a new
    conversation (`conversation_id` None). A stream with no frame for `lost_after` seconds
    before its closing message is lost."""
    started, sent_ns = time.monotonic(), time.time_ns()
    first_ns = 0
    options = {"max_tokens": tokens, "temperature": TEMPERATURE}
    accepted = await session.send(
        PROMPT,
        conversation_id=conversation_id,
        new_first_message=conversation_id is not None,
        options=options,
        timeout=lost_after,
    )
    if accepted["type"] != "chat.accepted":
        raise RuntimeError(f"refused: {accepted}")
    accepted_at = time.monotonic()
    arrivals: list[float] = []
    result = None
    generation_id = accepted["generation_id"]
    deltas: list[dict] = []
    with contextlib.suppress(TimeoutError):
        while True:
            message = await session.wait_for(
                lambda m: m.get("generation_id") == generation_id, timeout=lost_after
            )
            if message["type"] == "generation.delta":
                arrivals.append(time.monotonic())
                first_ns = first_ns or time.time_ns()
                deltas.append(message)
            elif message["type"] in ("generation.done", "generation.error"):
                result = message
                break
    text = "".join(d["text"] for d in sorted(deltas, key=lambda d: d["seq"]))
    usage = result.get("usage", {}) if result else {}
    ttft = (arrivals[0] - started) if arrivals else float("nan")
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    mismatch = result is None or result["type"] != "generation.done" or text != result["text"]
    done_at = time.monotonic()
    first_at, last_at = (arrivals[0], arrivals[-1]) if arrivals else (done_at, done_at)
    return Stream(
        tokens=int(usage.get("completion_tokens", 0)),
        ttft=ttft,
        gaps=gaps,
        mismatch=mismatch,
        timeline=(
            accepted_at - round_start,
            first_at - round_start,
            last_at - round_start,
            done_at - round_start,
        ),
        lost=result is None,
        send=(accepted["request_id"], sent_ns, first_ns) if first_ns else None,
    )


async def one_openai_stream(
    client: Any, model: str, tokens: int, round_start: float, lost_after: float
) -> Stream:
    """The same request through `/v1/chat/completions`, streamed with its usage chunk. The
    stream's whole text is its content chunks (the API has no closing text to compare with),
    so a mismatch here is a stream that never finished."""
    started = time.monotonic()
    arrivals: list[float] = []
    usage = None
    finished = False
    async with asyncio.timeout(lost_after * 4):
        stream = await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=tokens,
            temperature=TEMPERATURE,
            stream=True,
            stream_options={"include_usage": True},
        )
        accepted_at = time.monotonic()
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.monotonic())
            if chunk.choices and chunk.choices[0].finish_reason:
                finished = True
            if chunk.usage is not None:
                usage = chunk.usage
    done_at = time.monotonic()
    first_at, last_at = (arrivals[0], arrivals[-1]) if arrivals else (done_at, done_at)
    return Stream(
        tokens=usage.completion_tokens if usage else 0,
        ttft=(arrivals[0] - started) if arrivals else float("nan"),
        gaps=[b - a for a, b in itertools.pairwise(arrivals)],
        mismatch=not finished,
        timeline=(
            accepted_at - round_start,
            first_at - round_start,
            last_at - round_start,
            done_at - round_start,
        ),
        lost=usage is None,
    )


SERVER_PROCESSES = ("web", "worker")


def server_cpu_times(stack: Any) -> dict[str, float]:
    """CPU seconds used so far by each of the stack's `SERVER_PROCESSES` itself (a process's
    own times: the worker's engine processes are its children and not counted)."""
    import psutil

    times = {}
    for name in SERVER_PROCESSES:
        process = stack.processes.get(name)
        if process is None:
            continue
        with contextlib.suppress(psutil.Error):
            cpu = psutil.Process(process.pid).cpu_times()
            times[name] = cpu.user + cpu.system
    return times


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in after if name in before}


def server_per_token(run: Run) -> str:
    """Each server process's CPU ms per token received: "web 0.41, worker 0.22"."""
    return ", ".join(
        f"{name} {run.server_cpu[name] * 1000 / run.tokens:.2f}" if run.tokens else f"{name} -"
        for name in SERVER_PROCESSES
        if name in run.server_cpu
    )


def timeline_summary(run: Run) -> str:
    """Where a round's time goes at the client, in ms (median / max over its streams)."""
    if not run.timelines:
        return ""
    accepted, first, last, done = (list(column) for column in zip(*run.timelines, strict=True))
    to_first = [f - a for a, f in zip(accepted, first, strict=True)]
    to_done = [d - lt for lt, d in zip(last, done, strict=True)]

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.0f}/{max(values) * 1000:.0f}"

    return (
        f"accepted {ms(accepted)}, accepted→first delta {ms(to_first)}, "
        f"last delta→done {ms(to_done)}, done {ms(done)} ms (p50/max)"
    )


def registry_sampling(database_url: str) -> dict[str, float]:
    """The default model's sampling, as the worker reads it for the pipeline's requests."""
    import psycopg

    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT default_top_p, default_min_p FROM inference_languagemodel "
            "WHERE is_default AND enabled"
        ).fetchone()
    if row is None:
        raise RuntimeError("the bench database has no default model")
    return {"temperature": TEMPERATURE, "top_p": row[0], "min_p": row[1]}


@dataclass(frozen=True)
class Workload:
    """What the pipeline's clients do (see the module docstring)."""

    new_conversations: bool = False
    streams_per_user: int = 1
    lost_after: float = 120.0
    churn: int = 0  # connections of another user that open and close throughout each round


def measure(
    concurrencies: list[int],
    tokens: int,
    rounds: int,
    *,
    with_raw: bool,
    workload: Workload = Workload(),
    paths: tuple[str, ...] = ("websocket",),
) -> tuple[dict[str, dict[int, Run]], dict[int, Run], dict[str, float]]:
    """(pipeline runs per path, raw runs, sampling). With `with_raw`, the raw engine runs in
    this process beside the stack, and its rounds alternate with the pipeline's: this machine's
    speed drifts by ±15% over minutes, and a drift then weighs on both sides alike. `paths`:
    the websocket, the OpenAI-compatible API, or both, one round of each per round."""
    from bench.engine import run_streams, start_engine
    from chatclient.client import ChatClient
    from tests.support.stack import start_stack

    workdir = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    stack = start_stack(
        workdir=workdir,
        database="chat_bench",
        redis_db=14,
        extra_env={
            "INFERENCE_IGNORE_EOS": "true",
            "CHAT_RATE_PER_MINUTE": "100000",
            "CHAT_DAILY_MESSAGE_QUOTA": "100000",
            "CHAT_MAX_CONCURRENT_GENERATIONS": str(workload.streams_per_user),
        },
    )
    try:
        sampling = registry_sampling(stack.env["DATABASE_URL"])
        users = []
        for _ in range(-(-max(concurrencies) // workload.streams_per_user)):
            client = ChatClient(stack.base_url)
            client.register(f"bench-{uuid.uuid4().hex[:12]}@example.com", "bench passphrase 1234!")
            client.login()
            users.append(client)
        # Stream i is a connection of user i // streams_per_user.
        clients = [users[i // workload.streams_per_user] for i in range(max(concurrencies))]
        api_clients: list[Any] = []
        if "openai" in paths:
            import openai

            keys = {
                id(user): user.request("POST", "/api/keys", {"name": "bench"})["key"]
                for user in users
            }
            api_clients = [
                openai.AsyncOpenAI(
                    base_url=f"{stack.base_url}/v1", api_key=keys[id(c)], max_retries=0
                )
                for c in clients
            ]

        async def open_conversation(client: Any) -> str:
            """A conversation with its first answer and its model-written title, so that the
            measured rounds run no title generation (a conversation is titled once)."""
            async with client.connect() as session:
                accepted = await session.send(PROMPT, options={"max_tokens": 8})
                conversation_id = accepted["conversation_id"]
                await session.collect(accepted["generation_id"])
                # The provisional title, then the model's (none when its reply was unusable).
                with contextlib.suppress(TimeoutError):
                    for _ in range(2):
                        await session.wait_for(
                            lambda m: (
                                m.get("type") == "conversation.updated"
                                and m.get("conversation_id") == conversation_id
                            ),
                            timeout=120,
                        )
                return str(conversation_id)

        async def open_conversations() -> list[str]:
            return list(await asyncio.gather(*(open_conversation(c) for c in clients)))

        conversations: list[str | None] = [None] * len(clients)
        if not workload.new_conversations:
            title_started = time.monotonic()
            conversations = list(asyncio.run(open_conversations()))
            print(
                f"{len(clients)} conversations answered and titled in "
                f"{time.monotonic() - title_started:.1f} s (not measured)",
                flush=True,
            )

        churner = ChatClient(stack.base_url)
        churner.register(f"churn-{uuid.uuid4().hex[:12]}@example.com", "bench passphrase 1234!")
        churner.login()

        async def churn(stop: asyncio.Event) -> None:
            while not stop.is_set():
                session = await churner.open()
                await asyncio.sleep(random.uniform(0, 0.05))
                await session.close()

        async def round_of(n: int) -> Run:
            # The clients connect (websocket, bearer token) before the clock starts: a chat
            # app holds its connection open, and the raw engine's start is not timed either.
            async with contextlib.AsyncExitStack() as connections:
                sessions = [await connections.enter_async_context(c.connect()) for c in clients[:n]]
                stop = asyncio.Event()
                churners = [asyncio.ensure_future(churn(stop)) for _ in range(workload.churn)]
                started, cpu, started_ns = time.monotonic(), time.process_time(), time.time_ns()
                server = server_cpu_times(stack)
                try:
                    results = await asyncio.gather(
                        *(
                            one_stream(s, tokens, c, started, workload.lost_after)
                            for s, c in zip(sessions, conversations, strict=False)
                        )
                    )
                finally:
                    stop.set()
                    await asyncio.gather(*churners)
                seconds, cpu = time.monotonic() - started, time.process_time() - cpu
                server = cpu_used(server, server_cpu_times(stack))
            return Run(
                tokens=sum(r.tokens for r in results),
                seconds=seconds,
                ttfts=[r.ttft for r in results if not r.lost],
                gaps=[g for r in results for g in r.gaps],
                mismatches=sum(r.mismatch and not r.lost for r in results),
                lost=sum(r.lost for r in results),
                timelines=[r.timeline for r in results],
                client_cpu=cpu,
                server_cpu=server,
                windows=[(started_ns, time.time_ns())],
                sends={r.send[0]: r.send[1:] for r in results if r.send},
            )

        async def api_round_of(n: int) -> Run:
            model = (await api_clients[0].models.list()).data[0].id
            started, cpu, started_ns = time.monotonic(), time.process_time(), time.time_ns()
            server = server_cpu_times(stack)
            results = await asyncio.gather(
                *(
                    one_openai_stream(c, model, tokens, started, workload.lost_after)
                    for c in api_clients[:n]
                )
            )
            seconds, cpu = time.monotonic() - started, time.process_time() - cpu
            server = cpu_used(server, server_cpu_times(stack))
            return Run(
                tokens=sum(r.tokens for r in results),
                seconds=seconds,
                ttfts=[r.ttft for r in results if not r.lost],
                gaps=[g for r in results for g in r.gaps],
                mismatches=sum(r.mismatch and not r.lost for r in results),
                lost=sum(r.lost for r in results),
                timelines=[r.timeline for r in results],
                client_cpu=cpu,
                server_cpu=server,
                windows=[(started_ns, time.time_ns())],
            )

        rounds_by_path = {"websocket": round_of, "openai": api_round_of}

        async def measured_rounds() -> tuple[dict[str, dict[int, Run]], dict[int, Run]]:
            engine = start_engine() if with_raw else None
            try:
                # Warm-up: first compiles, first connections.
                if engine is not None:
                    await run_streams(engine, concurrency=2, tokens=8)
                for path in paths:
                    await rounds_by_path[path](1)
                ours: dict[str, dict[int, Run]] = {path: {} for path in paths}
                raw: dict[int, Run] = {}
                for n in concurrencies:
                    each: dict[str, list[Run]] = {path: [] for path in paths}
                    each_raw: list[Run] = []
                    for index in range(rounds):
                        # Alternate which side goes first, so neither always follows the other,
                        # and let each round's trailing work (acks, closing connections) end
                        # before the next round starts.
                        if engine is not None and index % 2 == 0:
                            await asyncio.sleep(SETTLE_SECONDS)
                            each_raw.append(await raw_round(engine, n, tokens, sampling))
                        ordered = paths if index % 2 == 0 else tuple(reversed(paths))
                        for path in ordered:
                            await asyncio.sleep(SETTLE_SECONDS)
                            run = await rounds_by_path[path](n)
                            each[path].append(run)
                            print(
                                f"{path}, {n} streams: {run.tokens_per_second:.0f} tok/s, TTFT "
                                f"p50 {statistics.median(run.ttfts) * 1000:.0f} ms; "
                                f"{timeline_summary(run)}; "
                                f"lost {run.lost}, mismatched {run.mismatches}; client CPU "
                                f"{run.client_cpu:.1f} s ({run.client_cpu / run.seconds:.0%}); "
                                f"server CPU ms/token {server_per_token(run)}",
                                flush=True,
                            )
                        if engine is not None and index % 2 == 1:
                            await asyncio.sleep(SETTLE_SECONDS)
                            each_raw.append(await raw_round(engine, n, tokens, sampling))
                        if each_raw:
                            print(f"raw, {n} streams: {each_raw[-1].tokens_per_second:.0f} tok/s")
                    for path in paths:
                        ours[path][n] = merged(each[path])
                    if each_raw:
                        raw[n] = merged(each_raw)
                return ours, raw
            finally:
                if engine is not None:
                    engine.shutdown()

        ours, raw = asyncio.run(measured_rounds())
        return ours, raw, sampling
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds per concurrency on each side, pooled (one round of 16 x 64 tokens is ~4 s)",
    )
    parser.add_argument(
        "--new-conversations",
        action="store_true",
        help="every stream starts a new conversation (titled by the model afterwards)",
    )
    parser.add_argument(
        "--streams-per-user", type=int, default=1, help="connections per user, asking at once"
    )
    parser.add_argument(
        "--lost-after",
        type=float,
        default=120.0,
        help="seconds without a frame after which a stream counts as lost",
    )
    parser.add_argument(
        "--churn", type=int, default=0, help="connections opening and closing during each round"
    )
    parser.add_argument(
        "--paths",
        nargs="+",
        choices=["websocket", "openai"],
        default=["websocket"],
        help="the client paths measured, each against the same raw rounds",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="trace the stack (OTLP to a receiver in this process) and print where each "
        "concurrency's first token goes (bench/waterfall.py); tracing adds its own cost",
    )
    parser.add_argument(
        "--pipeline-only",
        action="store_true",
        help="skip the raw engine and print the pipeline's figures alone (for profiling)",
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_DEBUG", "true")

    workload = Workload(args.new_conversations, args.streams_per_user, args.lost_after, args.churn)
    receiver = None
    if args.trace:
        from tests.support.otlp import OtlpReceiver

        receiver = OtlpReceiver()
        # The stack's processes inherit these: every one exports to the receiver.
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.start()
        os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "500"
    ours, raw, sampling = measure(
        args.concurrency,
        args.tokens,
        args.rounds,
        with_raw=not args.pipeline_only,
        workload=workload,
        paths=tuple(args.paths),
    )
    print(f"\nworkload: {workload}")
    if receiver is not None:
        from bench.waterfall import render, rows

        for path, n in itertools.product(ours, args.concurrency):
            run = ours[path][n]
            table, messages = rows(receiver.spans, run.windows, run.sends)
            print(render(table, messages, f"{path}, {n} streams"))
        receiver.stop()
    for path, runs in ours.items():
        for n in args.concurrency:
            p = runs[n]
            print(
                f"{path}, {n} streams x {args.rounds} rounds: {n * args.rounds} streams, "
                f"lost {p.lost}, mismatched {p.mismatches} (target: 0 and 0)"
            )
    if args.pipeline_only:
        return

    print(
        f"\nmachine: {os.cpu_count()} CPUs; {args.tokens} tokens per stream (ignore_eos); "
        f"{args.rounds} rounds per concurrency on each side, alternating, pooled"
    )
    print(f"sampling (the registry's default model, both sides): {sampling}")
    print(
        "| path | streams | raw tok/s | pipeline tok/s | ratio | raw TTFT p50/p99 ms "
        "| pipeline TTFT p50/p99 ms | added p50 ms | gaps p50/p99 ms | mismatches | lost "
        "| client CPU ms/token | server CPU ms/token |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for path, n in itertools.product(ours, args.concurrency):
        r, p = raw[n], ours[path][n]
        ms = 1000
        print(
            f"| {path} | {n} | {r.tokens_per_second:.0f} | {p.tokens_per_second:.0f} "
            f"| {p.tokens_per_second / r.tokens_per_second:.2f} "
            f"| {statistics.median(r.ttfts) * ms:.0f}/{(r.ttft_p99 or 0) * ms:.0f} "
            f"| {statistics.median(p.ttfts) * ms:.0f}/{percentile(p.ttfts, 0.99) * ms:.0f} "
            f"| {(statistics.median(p.ttfts) - statistics.median(r.ttfts)) * ms:.0f} "
            f"| {percentile(p.gaps, 0.5) * ms:.0f}/{percentile(p.gaps, 0.99) * ms:.0f} "
            f"| {p.mismatches} | {p.lost} "
            f"| {p.client_cpu * ms / p.tokens if p.tokens else 0:.2f} | {server_per_token(p)} |"
        )


if __name__ == "__main__":
    main()
