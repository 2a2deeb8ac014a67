"""Idle websockets on one Daphne process: how many, how cheaply, and whether their slots come back.

    flock /tmp/heavy.lock .venv/bin/python bench/connections.py [--connections 10000] \
        [--rate 500 | --storm] [--hold 600] [--kill] [--env NAME=VALUE ...]

Starts Daphne alone (`python -m config.server`, as scripts/run.sh does, DEBUG off) on its own
PostgreSQL database (`chat_connections`) and Redis database (10), creates `connections /
per-user` users with a bearer token each (straight into the database, no password hashing),
and opens N authenticated websockets from this one asyncio process (uvloop when installed): at
`--rate` per second, or all at once (`--storm`). A socket counts as open once its handshake is
done and Redis holds a live connection slot for every open socket (the consumer takes the slot
before it accepts); `--ping` also waits for the answer to a `ping` frame. Then it holds them
idle for `--hold` seconds, with Daphne's keepalive pings answered by the client library (the
clients send none, as browsers do), and closes them all at once (or, with `--kill`, kills
Daphne with SIGKILL while they are open).

It prints the open rate and time, connect errors (and the machine's accept-queue overflows),
the Daphne process's RSS before and after (and per socket), its CPU while opening and while
idle (from /proc/<pid>/stat, every `--sample` seconds over the hold), this client's own CPU,
Redis's connections and memory for the stack's database (INFO, CLIENT LIST), every close that
the server initiated (with its code), and the connection slots left in Redis (the per-user
sorted sets of `chat.limits`, under the stack's CACHE_KEY_PREFIX) 1 to 5 s after the client
started closing, or until the slot lifetime has passed once Daphne was killed. It exits with
status 1 when a target is missed:

- 0 connect errors, and every open socket holding its slot;
- a storm (`--storm`) of N connections open in under 30 s;
- 0 closes initiated by the server while the connections are held;
- under 64 KB of Daphne RSS per socket;
- Daphne under 10% of one core on average while idle (the hold: keepalive and slot renewals
  included);
- 0 slots left 5 s after the client started closing; after `--kill`, 0 live slots within the
  slot lifetime (`chat.limits.CONNECTION_TTL_SECONDS`) of the kill.

Run it under `flock /tmp/heavy.lock`, alone on the machine: the client shares the cores with
the server. `ulimit -n` must allow N descriptors in each process; the script raises its soft
limit to the hard one, which Daphne inherits, and checks Daphne's. `--env` passes settings to
the stack (`--env CHAT_WS_PING_INTERVAL_SECONDS=3600`, for instance).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATABASE = "chat_connections"
REDIS_DB = 10
KEY_PREFIX = "bench-connections"
STORM_TARGET_SECONDS = 30.0
RSS_TARGET_BYTES = 64 * 1024
IDLE_CPU_TARGET = 10.0  # % of one core
RELEASE_SECONDS = 5.0
PING_FRAME = '{"type":"ping"}'

# Run in the stack's environment: users on the default plan with an unusable password (no slow
# hashing) and one bearer token each, issued by the accounts service. Prints [[user id, raw
# token], ...].
CREATE_USERS = """
import json, sys
import django
django.setup()
from django.contrib.auth.hashers import make_password
from accounts.models import User, default_plan
from accounts.services import token_issue
unusable = make_password(None)
plan = default_plan()  # bulk_create skips save(), which would set it
users = User.objects.bulk_create(
    [
        User(email=f"conn-{i}@example.com", password=unusable, plan=plan)
        for i in range(int(sys.argv[1]))
    ],
    batch_size=1000,
)
print(json.dumps([[user.pk, token_issue(user=user, name="bench")[0]] for user in users]))
"""


# --- the server side: Daphne alone, and what /proc and Redis say about it -------------------


def start_daphne(workdir: Path, extra_env: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """Daphne on a fresh database, as `tests.support.stack` starts it, without a worker."""
    from tests.support.stack import Stack, _manage, daphne_argv, free_port

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "false",
        # DEBUG off, as in production (no query log); a throwaway key, plain http.
        "DJANGO_SECRET_KEY": "bench-connections-" + "x" * 48,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "MONGODB_URL": f"embedded://{workdir / 'store'}",
        "CACHE_KEY_PREFIX": KEY_PREFIX,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_TRUSTED_ORIGINS": base_url,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "REGISTRATION_IP_LIMIT": "100000",
        **extra_env,
    }
    subprocess.run(
        ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", DATABASE],
        check=True,
    )
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DATABASE], check=True)
    redis_client(env).flushdb()
    _manage(env, "migrate", "--noinput", "-v", "0")
    stack = Stack(
        base_url=base_url, ws_url=f"ws://127.0.0.1:{port}/ws/chat/", env=env, workdir=workdir
    )
    stack.start_process("web", daphne_argv(port=port))
    deadline = time.monotonic() + 300
    while True:
        process = stack.processes["web"]
        if process.poll() is not None:
            raise RuntimeError(f"Daphne exited early:\n{stack.log('web')[-4000:]}")
        health = f"{base_url}/healthz"
        with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=5) as response:  # noqa: S310
            if response.status == 200:
                return stack, env
        if time.monotonic() > deadline:
            raise RuntimeError(f"Daphne not up after 300 s:\n{stack.log('web')[-4000:]}")
        time.sleep(0.5)


def create_users(env: dict[str, str], count: int) -> list[tuple[int, str]]:
    result = subprocess.run(
        [sys.executable, "-c", CREATE_USERS, str(count)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"creating the users failed:\n{result.stderr[-4000:]}")
    return [(int(pk), str(token)) for pk, token in json.loads(result.stdout.splitlines()[-1])]


def redis_client(env: dict[str, str]) -> Any:
    import redis

    return redis.Redis.from_url(env["REDIS_URL"], decode_responses=True)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process (all its threads) so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def open_files_limit(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return 0


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def listen_overflows() -> int:
    """The machine's TcpExt ListenOverflows: handshakes dropped because a listening socket's
    accept queue was full (the client retries its SYN 1, 3, 7 ... s later)."""
    with open("/proc/net/netstat") as netstat:
        lines = netstat.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=True))["ListenOverflows"])
    return 0


def redis_figures(client: Any) -> dict[str, Any]:
    """This database's clients (connections, subscriptions, their memory) and the server's."""
    ours = [c for c in client.client_list() if c.get("db") == str(REDIS_DB)]
    memory = client.info("memory")
    return {
        "connections": len(ours),
        "subscriber connections": sum(1 for c in ours if int(c.get("sub", 0)) > 0),
        "subscriptions": sum(int(c.get("sub", 0)) for c in ours),
        "client memory": sum(int(c.get("tot-mem", 0)) for c in ours),
        "used_memory": int(memory["used_memory"]),
        "keys": client.dbsize(),
    }


def slots_left(client: Any) -> tuple[int, int]:
    """(members, live members) of every user's connection set: `chat.limits` key
    `<CACHE_KEY_PREFIX>:chat:connections:<user id>`, scored by expiry time."""
    now = float(client.time()[0])
    names = list(client.scan_iter(match=f"{KEY_PREFIX}:chat:connections:*", count=1000))
    pipeline = client.pipeline(transaction=False)
    for name in names:
        pipeline.zcard(name)
        pipeline.zcount(name, f"({now}", "+inf")
    counts = pipeline.execute() if names else []
    return sum(counts[0::2]), sum(counts[1::2])


# --- the client side: N sockets in one asyncio process --------------------------------------


@dataclass
class Socket:
    token: str
    ws: Any = None
    started: float = 0.0
    ready: float | None = None
    error: str | None = None
    closing: bool = False  # we closed it (or killed the server)
    close_code: int | None = None
    closed_by_server: bool = False
    closed_at: float | None = None
    frames: int = 0


@dataclass
class Client:
    url: str
    open_timeout: float
    inflight: asyncio.Semaphore | None
    ping: bool
    sockets: list[Socket] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def connect(self, socket: Socket) -> bool:
        """Open the socket (and with `ping`, wait for the answer to a ping); False (and
        `error`) on failure."""
        from websockets.asyncio.client import connect

        socket.started = time.monotonic()
        try:
            async with self.inflight or contextlib.nullcontext():
                socket.ws = await connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {socket.token}"},
                    user_agent_header=None,
                    compression=None,
                    proxy=None,
                    # The server's keepalive only (browsers never ping): its pings are
                    # answered by the library.
                    ping_interval=None,
                    open_timeout=self.open_timeout,
                    close_timeout=30,
                    max_size=2**16,
                    max_queue=4,
                )
                if self.ping:
                    await socket.ws.send(PING_FRAME)
                    reply = await asyncio.wait_for(socket.ws.recv(), self.open_timeout)
                    if json.loads(reply).get("type") != "pong":
                        raise RuntimeError(f"answered {reply!r}")
                socket.ready = time.monotonic()
                return True
        except Exception as error:
            socket.error = f"{type(error).__name__}: {error}"[:200]
            if socket.ws is not None and socket.ws.close_code is not None:
                socket.close_code = socket.ws.close_code
                socket.closed_by_server = not socket.closing
            return False

    async def hold(self, socket: Socket) -> None:
        """Connect, then read until the connection closes, noting who closed it and how."""
        from websockets.exceptions import ConnectionClosed

        if not await self.connect(socket):
            return
        try:
            async for _ in socket.ws:
                socket.frames += 1
        except ConnectionClosed:
            pass
        socket.closed_at = time.monotonic()
        socket.close_code = socket.ws.close_code
        socket.closed_by_server = not socket.closing

    def open(self, socket: Socket) -> None:
        self.sockets.append(socket)
        self.tasks.append(asyncio.create_task(self.hold(socket)))

    async def close_all(self) -> float:
        """Close every open socket (code 1000) at once; the seconds until all are closed."""
        started = time.monotonic()
        for socket in self.sockets:
            socket.closing = True
        await asyncio.gather(
            *(s.ws.close() for s in self.sockets if s.ws is not None), return_exceptions=True
        )
        await asyncio.gather(*self.tasks, return_exceptions=True)
        return time.monotonic() - started

    def server_closes(self, since: float = 0.0) -> Counter[int | None]:
        return Counter(
            s.close_code
            for s in self.sockets
            if s.closed_by_server and (s.closed_at or s.started) >= since
        )

    def ready_count(self) -> int:
        return sum(1 for s in self.sockets if s.ready is not None)


def client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the run ------------------------------------------------------------------------------


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)

    def target(self, name: str, met: bool, detail: str) -> None:
        self.say(f"  target {'met   ' if met else 'MISSED'}: {name} ({detail})")
        if not met:
            self.missed.append(name)


def kib(value: float) -> str:
    return f"{value / 1024:.1f} KiB"


def mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


async def run(args: argparse.Namespace, report: Report) -> None:
    from chat.limits import CONNECTION_TTL_SECONDS

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.connections + 1000
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(wanted, soft)), hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < wanted:
        raise SystemExit(f"ulimit -n is {soft} (hard {hard}); {wanted} descriptors are needed")

    workdir = Path(tempfile.mkdtemp(prefix="bench-connections-"))
    extra_env = {name: value for name, _, value in (item.partition("=") for item in args.env)}
    stack, env = start_daphne(workdir, extra_env)
    web = stack.processes["web"]
    redis = redis_client(env)
    try:
        pid = web.pid
        users = create_users(env, -(-args.connections // args.per_user))
        report.say(
            f"Daphne pid {pid}: open files limit {open_files_limit(pid)}, client's {soft}; "
            f"{len(users)} users x {args.per_user} connections; log {workdir / 'web.log'}"
        )
        if open_files_limit(pid) < wanted:
            report.target("file descriptors", False, f"Daphne's limit {open_files_limit(pid)}")

        client = Client(
            url=stack.ws_url,
            open_timeout=args.open_timeout,
            inflight=asyncio.Semaphore(args.inflight) if args.inflight else None,
            ping=args.ping,
        )
        # A few connections first, so that the baseline includes what the first one loads.
        for token in [token for _, token in users[: min(10, len(users))]]:
            warm = Socket(token=token)
            if await client.connect(warm):
                warm.closing = True
                await warm.ws.close()
        await asyncio.sleep(RELEASE_SECONDS)
        rss_before = rss_bytes(pid)
        redis_before = redis_figures(redis)

        # --- open --------------------------------------------------------------------------
        mode = "storm (all at once)" if args.storm else f"{args.rate}/s"
        report.say(f"\nopening {args.connections} sockets, {mode}")
        cpu_server_0, cpu_client_0 = cpu_seconds(pid), client_cpu_seconds()
        overflows = listen_overflows()
        peak_redis = redis_before["connections"]
        opened = time.monotonic()
        for n in range(args.connections):
            if not args.storm:
                delay = opened + n / args.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            client.open(Socket(token=users[n // args.per_user][1]))
        last_report = last_sample = time.monotonic()
        while True:
            done = [s for s in client.sockets if s.ready is not None or s.error is not None]
            if len(done) == args.connections:
                break
            if time.monotonic() - last_sample >= 1:
                last_sample = time.monotonic()
                peak_redis = max(peak_redis, redis_figures(redis)["connections"])
            if time.monotonic() - last_report >= 5:
                last_report = time.monotonic()
                failed = sum(1 for s in done if s.error)
                report.say(
                    f"  {time.monotonic() - opened:5.0f} s: {len(done) - failed} open, "
                    f"{failed} errors"
                )
            await asyncio.sleep(0.1)
        handshakes_seconds = max(s.ready or s.started for s in client.sockets) - opened
        # The consumer registers the connection (and joins its group) after the handshake: an
        # open socket counts once Redis holds a live slot for each one.
        ready = client.ready_count()
        while True:
            live = slots_left(redis)[1]
            if live >= ready or time.monotonic() - opened > handshakes_seconds + args.open_timeout:
                break
            await asyncio.sleep(0.2)
        open_seconds = time.monotonic() - opened
        cpu_server_open = cpu_seconds(pid) - cpu_server_0
        cpu_client_open = client_cpu_seconds() - cpu_client_0
        errors = Counter(s.error.split(":")[0] for s in client.sockets if s.error)
        latencies = sorted(s.ready - s.started for s in client.sockets if s.ready is not None)
        p50 = latencies[len(latencies) // 2] if latencies else float("nan")
        p99 = latencies[int(len(latencies) * 0.99)] if latencies else float("nan")
        report.say(
            f"  {ready} open in {open_seconds:.1f} s ({ready / open_seconds:.0f}/s; handshakes "
            f"done after {handshakes_seconds:.1f} s, {live} slots held); open time "
            f"(handshake{' and pong' if args.ping else ''}) p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms; "
            f"errors {sum(errors.values())} {dict(errors) or ''}"
        )
        report.say(
            f"  CPU while opening: Daphne {cpu_server_open:.1f} s "
            f"({100 * cpu_server_open / open_seconds:.0f}% of a core), "
            f"client {cpu_client_open:.1f} s ({100 * cpu_client_open / open_seconds:.0f}%)"
        )
        report.say(
            f"  accept queue overflows (machine-wide): {listen_overflows() - overflows}; "
            f"Redis connections of the stack's database at most {peak_redis} (sampled)"
        )
        for sample in list(dict.fromkeys(s.error for s in client.sockets if s.error))[:5]:
            report.say(f"  error: {sample}")
        report.target("connect errors", not errors, f"{sum(errors.values())} errors")
        if args.storm:
            report.target(
                f"storm under {STORM_TARGET_SECONDS:.0f} s",
                open_seconds < STORM_TARGET_SECONDS and ready == args.connections,
                f"{open_seconds:.1f} s",
            )
        await asyncio.sleep(1)
        members, live = slots_left(redis)
        report.say(f"  connection slots held in Redis: {live} live ({members} members)")
        report.target("every open socket holds its slot", live == ready, f"{live} of {ready}")

        # --- hold --------------------------------------------------------------------------
        report.say(f"\nholding for {args.hold:.0f} s")
        hold_started = time.monotonic()
        rss_open = rss_bytes(pid)
        cpu_server_0, cpu_client_0 = cpu_seconds(pid), client_cpu_seconds()
        samples: list[tuple[float, float]] = []  # (seconds, Daphne CPU %) per interval
        previous = (time.monotonic(), cpu_server_0)
        while time.monotonic() - hold_started < args.hold:
            await asyncio.sleep(min(args.sample, args.hold - (time.monotonic() - hold_started)))
            now, cpu = time.monotonic(), cpu_seconds(pid)
            samples.append((now - hold_started, 100 * (cpu - previous[1]) / (now - previous[0])))
            previous = (now, cpu)
            closes = client.server_closes(since=hold_started)
            if args.verbose or int(now - hold_started) % 60 < args.sample:
                report.say(
                    f"  {now - hold_started:5.0f} s: Daphne {samples[-1][1]:4.1f}% CPU, "
                    f"RSS {mib(rss_bytes(pid))}, {sum(closes.values())} server closes "
                    f"{dict(closes) or ''}"
                )
        hold_seconds = time.monotonic() - hold_started
        cpu_server_idle = 100 * (cpu_seconds(pid) - cpu_server_0) / hold_seconds
        cpu_client_idle = 100 * (client_cpu_seconds() - cpu_client_0) / hold_seconds
        rss_after = rss_bytes(pid)
        redis_after = redis_figures(redis)
        closes = client.server_closes()
        hold_closes = client.server_closes(since=hold_started)
        still_open = sum(1 for s in client.sockets if s.ready is not None and s.closed_at is None)
        per_socket = (rss_after - rss_before) / max(1, still_open)
        report.say(
            f"  Daphne CPU while idle: {cpu_server_idle:.1f}% of a core on average, "
            f"peak {max(p for _, p in samples):.1f}% over {args.sample:.0f} s; "
            f"client {cpu_client_idle:.1f}%"
        )
        report.say(
            f"  Daphne RSS: {mib(rss_before)} before, {mib(rss_open)} once open, "
            f"{mib(rss_after)} after the hold: {kib(per_socket)} per socket; "
            f"{open_files(pid)} open files"
        )
        report.say(
            "  Redis (db {}): {} connections ({} subscribed, {} subscriptions, client memory "
            "{}), was {}; used_memory {} (was {}); {} keys".format(
                REDIS_DB,
                redis_after["connections"],
                redis_after["subscriber connections"],
                redis_after["subscriptions"],
                kib(redis_after["client memory"]),
                redis_before["connections"],
                mib(redis_after["used_memory"]),
                mib(redis_before["used_memory"]),
                redis_after["keys"],
            )
        )
        report.say(
            f"  server-initiated closes: {sum(hold_closes.values())} while held "
            f"{dict(hold_closes) or ''}, {sum(closes.values())} in all {dict(closes) or ''}; "
            f"{still_open} of {ready} still open"
        )
        report.target("0 server closes while held", not hold_closes, f"{sum(hold_closes.values())}")
        report.target(
            f"under {RSS_TARGET_BYTES // 1024} KB per socket",
            per_socket < RSS_TARGET_BYTES,
            kib(per_socket),
        )
        report.target(
            f"idle under {IDLE_CPU_TARGET:.0f}% of a core",
            cpu_server_idle < IDLE_CPU_TARGET,
            f"{cpu_server_idle:.1f}%",
        )

        # --- close, or kill --------------------------------------------------------------
        if args.kill:
            report.say("\nkilling Daphne (SIGKILL) with the sockets open")
            for socket in client.sockets:
                socket.closing = True
            killed = time.monotonic()
            os.killpg(web.pid, signal.SIGKILL)
            web.wait(timeout=30)
            await asyncio.gather(*client.tasks, return_exceptions=True)
            members, live = slots_left(redis)
            report.say(f"  right after the kill: {live} live slots ({members} members)")
            released_at = None
            while time.monotonic() - killed < CONNECTION_TTL_SECONDS + 30:
                await asyncio.sleep(1)
                members, live = slots_left(redis)
                if live == 0 and released_at is None:
                    released_at = time.monotonic() - killed
                if members == 0:
                    break
            report.say(
                f"  live slots gone {released_at or float('nan'):.0f} s after the kill, "
                f"sets gone {time.monotonic() - killed:.0f} s after it "
                f"({members} members, {live} live left); slot lifetime "
                f"{CONNECTION_TTL_SECONDS} s"
            )
            report.target(
                "slots released within their lifetime of a kill",
                released_at is not None and released_at <= CONNECTION_TTL_SECONDS + 1,
                f"{released_at}",
            )
        else:
            report.say("\nclosing every socket (1000)")
            cpu_server_0 = cpu_seconds(pid)
            # From the moment the client starts closing (all at once): the slots left, polled.
            closing = time.monotonic()
            closer = asyncio.create_task(client.close_all())
            series: list[tuple[float, int, int]] = []  # (seconds, members, live)
            while time.monotonic() - closing < RELEASE_SECONDS + 25:
                members, live = slots_left(redis)
                series.append((time.monotonic() - closing, members, live))
                if members == 0 and closer.done() and series[-1][0] >= RELEASE_SECONDS:
                    break
                await asyncio.sleep(0.25)
            close_seconds = await closer
            report.say(
                f"  the client's closes all acknowledged after {close_seconds:.1f} s "
                f"(Daphne CPU {cpu_seconds(pid) - cpu_server_0:.1f} s)"
            )
            at_release = next(m for t, m, _ in series if t >= RELEASE_SECONDS)
            gone_at = next((t for t, m, _ in series if m == 0), None)
            marks = [
                next((m for t, m, _ in series if t >= second), series[-1][1])
                for second in range(1, 1 + int(RELEASE_SECONDS))
            ]
            report.say(
                f"  slots left after 1..{RELEASE_SECONDS:.0f} s: {marks}; all gone after "
                f"{'never' if gone_at is None else f'{gone_at:.1f} s'}; "
                f"Daphne RSS {mib(rss_bytes(pid))}"
            )
            report.target(
                f"0 slots left {RELEASE_SECONDS:.0f} s after the close",
                at_release == 0,
                f"{at_release}",
            )
            stack.stop_process("web")
    finally:
        stack.stop()
        warnings = [
            line
            for line in stack.log("web").splitlines()
            if "WARNING" in line or "ERROR" in line or "Traceback" in line
        ]
        if warnings:
            report.say(f"\nDaphne logged {len(warnings)} warnings/errors; the first ones:")
            for line in list(dict.fromkeys(warnings))[:8]:
                report.say(f"  {line[:300]}")


def machine() -> str:
    model, flags = "?", set()
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    simd = [f for f in ("avx2", "avx512f", "avx512bw", "avx512_bf16") if f in flags]
    return f"{model}, {os.cpu_count()} cores, {' '.join(simd) or 'no AVX2'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--per-user", type=int, default=10, help="connections per user")
    parser.add_argument("--rate", type=float, default=500, help="new connections per second")
    parser.add_argument("--storm", action="store_true", help="open them all at once")
    parser.add_argument(
        "--inflight", type=int, default=0, help="most handshakes in flight (0: no limit)"
    )
    parser.add_argument("--open-timeout", type=float, default=60)
    parser.add_argument(
        "--ping", action="store_true", help="a socket is open once a ping is answered"
    )
    parser.add_argument("--hold", type=float, default=600, help="seconds to hold them idle")
    parser.add_argument("--sample", type=float, default=10, help="CPU sample interval")
    parser.add_argument("--kill", action="store_true", help="kill -9 Daphne after the hold")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the stack (repeatable)"
    )
    args = parser.parse_args()
    report = Report()
    report.say(f"machine: {machine()}")
    report.say(f"command: {' '.join(sys.argv)}")
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
        report.say("client loop: uvloop")
    except ImportError:
        loop_factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run(args, report))
    if report.missed:
        report.say(f"\nMISSED: {', '.join(report.missed)}")
        sys.exit(1)
    report.say("\nevery target met")


if __name__ == "__main__":
    main()
