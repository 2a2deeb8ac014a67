"""The soak: mixed traffic on the real stack for a while, then its invariants checked.

    .venv/bin/python bench/soak.py --minutes 30      # by hand, on an otherwise idle machine
    .venv/bin/python bench/soak.py --minutes 1       # the short run CI makes (tests/e2e)
    .venv/bin/python bench/soak.py --minutes 20 --trace-memory   # where memory grows
    MEMORY_TRACE_FRAMES=0 .venv/bin/python bench/soak.py --minutes 12 --trace-memory
                        # native memory, threads and object types only, the engine's worker too

The stack is the real one (Daphne, a Celery worker hosting the default model, Celery beat with
the reaper, PostgreSQL, Redis, the embedded store), with the default limits. Many users each
loop over what people do: send (new conversation or the next turn), stop an answer mid-stream,
regenerate, drop the connection mid-answer and resume on a new one, list and search over REST.
A few abusive clients run beside them: ping floods, oversized frames, unknown ids, bad JSON.

At the end it checks, and prints:
- every answer a client saw is whole: its deltas numbered 1..n without gap or repeat, their
  text equal to the closing message's, and equal to what the store holds;
- no server error: no HTTP 5xx, no close 1011, no traceback in the processes' logs;
- nothing leaked: no concurrent-generation slot, waiting-queue entry or connection slot left
  in Redis once everything ended and every client closed;
- flat memory: each process's RSS (with its children: the engine) after warm-up and at the end
  (checked when the run is 10 minutes or longer: a short run has no steady state), with each
  process of each tree at both points and each tree's RSS once a minute (whether a growth
  levels off). With
  `--trace-memory` the processes trace their allocations (config/memtrace.py): a baseline at
  the warm-up, and at the end one file per process in the stack's `memtrace` folder naming the
  allocation sites that grew most.

It exits 1 when an invariant fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PASSWORD = "soak passphrase 1234!"  # noqa: S105 - test users of a throwaway stack
QUESTIONS = [
    "Name three fruits.",
    "What is the capital of France?",
    "Write two lines about the sea.",
    "Count from one to ten.",
    "Give me a tip for sleeping well.",
]
FINAL_TYPES = {"generation.done", "generation.error"}
MEMORY_GROWTH_LIMIT = 0.05
LONG_RUN_MINUTES = 10


@dataclass
class Answer:
    """What one client saw of one generation."""

    generation_id: str
    conversation_id: str
    message_id: str
    deltas: dict[int, str] = field(default_factory=dict)
    repeated: int = 0
    # Resumed on a new connection: what it missed came as one delta numbered by its last seq.
    resumed: bool = False
    final: dict[str, Any] | None = None

    def see(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "generation.delta":
            if frame["seq"] in self.deltas:
                self.repeated += 1
            self.deltas[frame["seq"]] = frame["text"]
        elif frame["type"] in FINAL_TYPES:
            self.final = frame


@dataclass
class Tally:
    answers: list[Answer] = field(default_factory=list)
    actions: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    closes: Counter[int] = field(default_factory=Counter)


async def _follow(session: Any, answer: Answer, *, timeout: float = 300) -> None:
    while answer.final is None:
        frame = await session.wait_for(
            lambda m: (
                m.get("generation_id") == answer.generation_id
                and m["type"] in FINAL_TYPES | {"generation.delta"}
            ),
            timeout=timeout,
        )
        answer.see(frame)


def _answer_of(accepted: dict[str, Any]) -> Answer:
    return Answer(
        generation_id=accepted["generation_id"],
        conversation_id=accepted["conversation_id"],
        message_id=accepted["assistant_message_id"],
    )


class User:
    """One user's loop of actions, one at a time."""

    def __init__(self, client: Any, tally: Tally, rng: random.Random) -> None:
        self.client = client
        self.tally = tally
        self.rng = rng
        self.conversations: list[str] = []
        self.answers: list[Answer] = []

    def options(self) -> dict[str, Any]:
        return {"max_tokens": self.rng.randint(8, 32)}

    async def send(self, session: Any) -> Answer | None:
        conversation = (
            self.rng.choice(self.conversations)
            if self.conversations and self.rng.random() < 0.6
            else None
        )
        accepted = await session.send(
            self.rng.choice(QUESTIONS), conversation_id=conversation, options=self.options()
        )
        return self.accepted(accepted)

    def accepted(self, frame: dict[str, Any]) -> Answer | None:
        if frame["type"] != "chat.accepted":
            self.tally.refusals[frame.get("code") or frame["type"]] += 1
            return None
        answer = _answer_of(frame)
        if frame["conversation_id"] not in self.conversations:
            self.conversations.append(frame["conversation_id"])
        self.answers.append(answer)
        self.tally.answers.append(answer)
        return answer

    async def act(self) -> None:
        action = self.rng.choices(
            ["send", "stop", "regenerate", "resume", "rest"], weights=[4, 1, 1, 1, 2]
        )[0]
        self.tally.actions[action] += 1
        if action == "rest":
            await self.rest()
            return
        async with self.client.connect() as session:
            if action == "regenerate" and self.answers:
                done = [a for a in self.answers if a.final is not None]
                if done:
                    await session.send_frame(
                        {
                            "type": "generation.regenerate",
                            "message_id": self.rng.choice(done).message_id,
                            "request_id": uuid.uuid4().hex,
                        }
                    )
                    frame = await session.wait_for(
                        lambda m: m["type"] in {"chat.accepted", "error"}, timeout=60
                    )
                    answer = self.accepted(frame)
                    if answer is not None:
                        await _follow(session, answer)
                    return
            answer = await self.send(session)
            if answer is None:
                await asyncio.sleep(1)
                return
            if action == "stop":
                first = await session.wait_for(
                    lambda m: (
                        m.get("generation_id") == answer.generation_id
                        and m["type"] in FINAL_TYPES | {"generation.delta"}
                    ),
                    timeout=300,
                )
                answer.see(first)
                if answer.final is None:
                    await session.send_frame(
                        {"type": "generation.stop", "generation_id": answer.generation_id}
                    )
            if action == "resume":
                first = await session.wait_for(
                    lambda m: (
                        m.get("generation_id") == answer.generation_id
                        and m["type"] in FINAL_TYPES | {"generation.delta"}
                    ),
                    timeout=300,
                )
                answer.see(first)
                if answer.final is None:
                    answer.resumed = True
                    await session.close()  # as a phone losing its network would
                    async with self.client.connect() as again:
                        await again.send_frame(
                            {
                                "type": "generation.subscribe",
                                "generation_id": answer.generation_id,
                                "after_seq": max(answer.deltas, default=0),
                            }
                        )
                        await _follow(again, answer)
                    return
            await _follow(session, answer)

    async def rest(self) -> None:
        from chatclient.client import ApiRequestError

        try:
            await asyncio.to_thread(self.client.request, "GET", "/api/conversations?q=the")
            if self.conversations:
                conversation = self.rng.choice(self.conversations)
                await asyncio.to_thread(
                    self.client.request, "GET", f"/api/conversations/{conversation}"
                )
        except ApiRequestError as error:
            if error.status >= 500:
                self.tally.server_errors.append(f"HTTP {error.status}: {error.body}")
            else:
                self.tally.refusals[f"http {error.status}"] += 1


async def _user_loop(user: User, deadline: float) -> None:
    import websockets

    while time.monotonic() < deadline:
        try:
            await user.act()
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else 1006
            user.tally.closes[code] += 1
            if code == 1011:
                user.tally.server_errors.append(f"close 1011 during {user.tally.actions}")


async def _abuser_loop(client: Any, tally: Tally, deadline: float, rng: random.Random) -> None:
    import websockets

    while time.monotonic() < deadline:
        try:
            async with client.connect() as session:
                kind = rng.choice(["flood", "oversized", "unknown", "bad_json"])
                tally.actions[f"abuse:{kind}"] += 1
                if kind == "flood":
                    for _ in range(40):
                        await session.connection.send(json.dumps({"type": "ping"}))
                elif kind == "oversized":
                    await session.connection.send("x" * 70_000)
                elif kind == "unknown":
                    for _ in range(5):
                        await session.send_frame(
                            {"type": "generation.subscribe", "generation_id": uuid.uuid4().hex}
                        )
                else:
                    await session.connection.send("{not json")
                with contextlib.suppress(TimeoutError):
                    while True:
                        await asyncio.wait_for(session.connection.recv(), 1.0)
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else 1006
            tally.closes[code] += 1
            if code == 1011:
                tally.server_errors.append("close 1011 to an abusive client")
        await asyncio.sleep(rng.uniform(0.2, 1.0))


def _tree(pid: int) -> list[Any]:
    """The process `pid` and all its descendants (psutil processes); empty once it has gone."""
    import psutil

    try:
        process = psutil.Process(pid)
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _tree_rss(pid: int) -> int:
    import psutil

    total = 0
    for member in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += member.memory_info().rss
    return total


def _catches(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler for `signum` (Linux: SigCgt in /proc): only those
    are sent the memory trace's signal, whose default action would end the others."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(
        (line.split()[1] for line in status.splitlines() if line.startswith("SigCgt")), "0"
    )
    return bool(int(caught, 16) >> (signum - 1) & 1)


def _memory_reports(stack: Any) -> None:
    """Ask every process of the stack that traces its memory (config/memtrace.py) for a
    report: a baseline the first time, what grew since the next."""
    import signal

    for process in stack.processes.values():
        for member in _tree(process.pid):
            if _catches(member.pid, signal.SIGUSR2):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member.pid, signal.SIGUSR2)


def _rss(stack: Any) -> dict[str, int]:
    return {name: _tree_rss(process.pid) for name, process in stack.processes.items()}


def _member_rss(stack: Any) -> dict[str, int]:
    """Each process of the stack's trees, by name and pid: which member of a tree grew (a
    worker or its engine)."""
    import psutil

    sizes = {}
    for name, process in stack.processes.items():
        for member in _tree(process.pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                sizes[f"{name}/{member.name()}/{member.pid}"] = member.memory_info().rss
    return sizes


def _leaks(stack: Any) -> dict[str, int]:
    """Keys that still hold members: generation slots, waiting queues, connection slots."""
    import redis

    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    prefix = stack.env["CACHE_KEY_PREFIX"]
    found: dict[str, int] = {}
    patterns = (
        f"{prefix}:chat:generations:*",  # a slot outlives the run (twice the task limit)
        f"{prefix}:chat:connections:*",  # a slot outlives the run (three minutes)
        "chat:waiting:*",
    )
    for pattern in patterns:
        for key in client.scan_iter(match=pattern):
            if key.startswith(b"chat:waiting-arrivals"):
                continue  # a counter, not a queue
            count = int(client.zcard(key))
            if count:
                found[key.decode()] = count
    return found


def _check_answers(tally: Tally, stored: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for answer in tally.answers:
        name = answer.generation_id
        if answer.final is None:
            problems.append(f"{name}: no closing message")
            continue
        if answer.final["type"] == "generation.error":
            problems.append(f"{name}: generation.error {answer.final['code']}")
        seqs = sorted(answer.deltas)
        if not answer.resumed and seqs != list(range(1, len(seqs) + 1)):
            problems.append(f"{name}: delta seqs {seqs[:5]}... have a gap")
        if answer.repeated:
            problems.append(f"{name}: {answer.repeated} deltas seen twice")
        streamed = "".join(answer.deltas[seq] for seq in seqs)
        if streamed != answer.final["text"]:
            problems.append(f"{name}: the deltas differ from the closing text")
        kept = stored.get(answer.message_id)
        if kept is None or kept["content"] != answer.final["text"]:
            problems.append(f"{name}: the store holds other text than the client saw")
    return problems


def soak(
    *, minutes: float, users: int, abusers: int, seed: int, trace_memory: bool = False
) -> dict[str, Any]:
    """Run the soak; its figures and the list of broken invariants (empty: all held).
    `trace_memory`: the processes trace their allocations (config/memtrace.py) from the
    warm-up to the end, and the report says where each one's memory grew."""
    from chatclient.client import ChatClient
    from tests.support.stack import start_stack

    workdir = Path(tempfile.mkdtemp(prefix="soak-stack-"))
    traces = workdir / "memtrace"
    stack = start_stack(
        workdir=workdir,
        database=os.environ.get("SOAK_DATABASE", "chat_soak"),
        redis_db=int(os.environ.get("SOAK_REDIS_DB", "14")),  # bench/pipeline.py's too
        with_beat=True,
        # As in production: with DEBUG on, Django keeps each thread's last 9,000 SQL queries,
        # which reads as memory growth over a long run.
        extra_env={
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": uuid.uuid4().hex * 2,
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_SECURE_COOKIES": "false",
            "DJANGO_HSTS_SECONDS": "0",
            # Its users register and sign in over the API at once: no verification email.
            "ACCOUNTS_VERIFY_EMAIL": "false",
            **({"MEMORY_TRACE_DIR": str(traces)} if trace_memory else {}),
        },
    )
    rng = random.Random(seed)
    tally = Tally()
    try:
        clients = []
        for index in range(users + abusers):
            client = ChatClient(stack.base_url)
            client.register(f"soak-{index}-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
            client.login()
            clients.append(client)
        people = [User(c, tally, random.Random(rng.random())) for c in clients[:users]]
        started = time.monotonic()
        deadline = started + minutes * 60
        warm: dict[str, dict[str, int]] = {"rss": {}}
        # Each process's RSS once a minute: whether a growth levels off or goes on.
        series: dict[str, list[int]] = {}

        async def run() -> None:
            async def warm_up() -> None:
                await asyncio.sleep(min(120.0, minutes * 60 * 0.2))
                warm["rss"] = _rss(stack)
                warm["members"] = _member_rss(stack)
                if trace_memory:
                    _memory_reports(stack)

            async def sample() -> None:
                while time.monotonic() < deadline:
                    for name, size in _rss(stack).items():
                        series.setdefault(name, []).append(round(size / 2**20))
                    await asyncio.sleep(min(60.0, max(0.0, deadline - time.monotonic())))

            await asyncio.gather(
                warm_up(),
                sample(),
                *(_user_loop(person, deadline) for person in people),
                *(
                    _abuser_loop(c, tally, deadline, random.Random(rng.random()))
                    for c in clients[users:]
                ),
            )

        asyncio.run(run())
        elapsed = time.monotonic() - started
        end_rss = _rss(stack)
        members = {
            name: f"{warm['members'].get(name, 0) / 2**20:.0f} -> {size / 2**20:.0f}"
            for name, size in _member_rss(stack).items()
        }
        if trace_memory:
            _memory_reports(stack)
            time.sleep(30)  # a snapshot of a large process takes a while
        stored: dict[str, dict[str, Any]] = {}
        for person in people:
            for conversation in person.conversations:
                detail = person.client.request("GET", f"/api/conversations/{conversation}")
                stored |= {m["id"]: m for m in detail["messages"]}
        time.sleep(5)  # every client closed: connection slots are released within 5 s
        problems = _check_answers(tally, stored)
        problems += tally.server_errors
        leaks = _leaks(stack)
        problems += [f"leaked: {key} holds {count}" for key, count in leaks.items()]
        for name in stack.processes:
            if "Traceback" in stack.log(name):
                problems.append(f"a traceback in the {name} log")
        growth = {
            name: (end_rss[name] - warm["rss"][name]) / warm["rss"][name]
            for name in end_rss
            if warm["rss"].get(name)
        }
        if minutes >= LONG_RUN_MINUTES:
            problems += [
                f"{name}: RSS grew {share:.1%} after warm-up"
                for name, share in growth.items()
                if share > MEMORY_GROWTH_LIMIT
            ]
        return {
            "seconds": round(elapsed),
            "answers": len(tally.answers),
            "actions": dict(tally.actions),
            "refusals": dict(tally.refusals),
            "closes": dict(tally.closes),
            "rss_after_warm_up_mb": {k: round(v / 2**20) for k, v in warm["rss"].items()},
            "rss_at_end_mb": {k: round(v / 2**20) for k, v in end_rss.items()},
            "rss_growth": {k: f"{v:+.1%}" for k, v in growth.items()},
            "rss_by_process_mb": members,
            "rss_each_minute_mb": series,
            **({"memory_traces": str(traces)} if trace_memory else {}),
            "problems": problems,
        }
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--abusers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="trace allocations from the warm-up on; reports in the stack's memtrace folder",
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    result = soak(
        minutes=args.minutes,
        users=args.users,
        abusers=args.abusers,
        seed=args.seed,
        trace_memory=args.trace_memory,
    )
    for name, value in result.items():
        if name != "problems":
            print(f"{name}: {value}")
    problems = result["problems"]
    print(f"invariants: {'all held' if not problems else f'{len(problems)} broken'}")
    for problem in problems[:50]:
        print(f"  - {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
