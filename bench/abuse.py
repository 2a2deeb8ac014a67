"""Does the web tier hold while abusive clients send pathological frames? Other users' pings.

    flock /tmp/heavy.lock .venv/bin/python bench/abuse.py [--seconds 60] [--limits-off]

Starts its own stack without a worker or an engine (pings and refusals never reach one):
Daphne as `scripts/run.sh` runs it (`python -m config.server`, DEBUG off), on PostgreSQL
database `chat_abuse`, Redis database 12 and an embedded store in a temporary folder, with
input moderation as configured (the default checks, the semantic one included, and the
consumer's embedding prefetch). Then:

1. baseline: `--pingers` users ping every `--ping-interval-ms`, nothing else running;
2. attack: `--abusers` users with `--connections` connections each send pathological frames,
   reconnecting whenever the server closes them, while the same pingers keep pinging on the
   connections they opened before, `--senders` ordinary users send a short chat.send every
   `--send-interval` s, and one more user opens a new connection every `--connect-interval` s
   (handshake to first pong). The sends and new connections are printed for information;
   they have no target.

The abusive frames: chat.send with 30,000-32,000 characters of one character class each
(underscores, digits, one letter, emoji, combining marks, right-to-left text, zero-width
characters, many short lines, nested brackets, distinct words in ~64 KB of UTF-8), deeply
nested JSON (past the parser's depth, and just within it in a frame the protocol refuses),
invalid-but-parsable frames (wrong types and fields, unpaired surrogates, blank or too-long
content, huge numbers), one request_id repeated, floods of generation.subscribe and
generation.stop for ids that do not exist, and a frame just over 64 KiB (closed 1009). Each
connection cycles through them in its own shuffled order, at most `--abuser-rate` frames a
second (0: as fast as the server answers) with `--in-flight` frames unanswered at most.

With the default limits (10 frames/s per connection, 600 a minute per user, 20 chat.send a
minute per user, close 4429 after 50 refusals in a row) most frames are refused; the report
counts how many chat.send of each kind reached input moderation all the same. `--limits-off`
raises the frame and message limits (and the daily quota), to show what the limits protect
against. The 3 concurrent answers per user stay: a message over them is refused after its
moderation, so moderation still runs for every chat.send.

Targets for the pings during the attack: p99 < 100 ms, max < 250 ms. Prints the figures and
the machine (CPU model, cores, AVX2/AVX-512), and exits 1 when a target is missed. The
abusers run in a child process at nice 10 (real ones are remote; here their client work
shares the server's cores) and the pingers in this one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATABASE = "chat_abuse"
REDIS_DB = 12
PASSWORD = "abuse bench passphrase 1234!"  # noqa: S105 - the bench users' own
MAX_FRAME_BYTES = 65_536  # CHAT_MAX_FRAME_BYTES
MAX_CONTENT = 32_000  # CHAT_MAX_CONTENT_CHARS
TARGET_P99_MS = 100.0
TARGET_MAX_MS = 250.0
PING_TIMEOUT = 10.0
LIMITS_OFF = {
    # High enough never to refuse here; not astronomic, as the limiters keep one entry a hit.
    "CHAT_FRAMES_PER_SECOND_PER_CONNECTION": "1000",
    "CHAT_FRAMES_PER_MINUTE_PER_USER": "100000",
    "CHAT_RATE_PER_MINUTE": "0",  # 0: no per-minute limit
    "CHAT_DAILY_MESSAGE_QUOTA": "0",  # 0: no quota
}


# --- the machine ----------------------------------------------------------------------------


def machine() -> str:
    """CPU model, cores and vector extensions, from /proc/cpuinfo."""
    model, processors = "unknown CPU", 0
    flags: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "processor":
                processors += 1
            elif key == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
    avx512 = sorted(f for f in flags if f.startswith("avx512"))
    vector = "AVX2" if "avx2" in flags else "no AVX2"
    vector += f", AVX-512 ({' '.join(avx512)})" if avx512 else ", no AVX-512"
    return f"{model}; {processors or os.cpu_count()} cores; {vector}"


# --- the stack: Daphne only -------------------------------------------------------------------


def start_web(workdir: Path, *, limits_off: bool, extra_env: dict[str, str]) -> Any:
    """Daphne on its own PostgreSQL and Redis databases, as tests/support/stack.py starts the
    e2e stack but without a worker (nothing here reaches one) and with DEBUG off."""
    import redis

    from tests.support.stack import Stack, daphne_argv, free_port

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_HSTS_SECONDS": "0",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "MONGODB_URL": f"embedded://{workdir / 'store'}",
        "CACHE_KEY_PREFIX": f"bench-{DATABASE}",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_TRUSTED_ORIGINS": base_url,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "REGISTRATION_IP_LIMIT": "100000",
        # Its users register and sign in over the API at once: no verification email.
        "ACCOUNTS_VERIFY_EMAIL": "false",
        **(LIMITS_OFF if limits_off else {}),
        **extra_env,
    }
    host = ["-h", "127.0.0.1", "-U", "postgres"]
    subprocess.run(["dropdb", *host, "--if-exists", "--force", DATABASE], check=True)
    subprocess.run(["createdb", *host, DATABASE], check=True)
    redis.Redis.from_url(redis_url).flushdb()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPO,
        env=env,
        check=True,
    )
    stack = Stack(
        base_url=base_url, ws_url=f"ws://127.0.0.1:{port}/ws/chat/", env=env, workdir=workdir
    )
    stack.start_process("web", daphne_argv(port=port))
    deadline = time.monotonic() + 300
    while True:  # /readyz wants a worker; /healthz answers once Daphne listens (models warm)
        if stack.processes["web"].poll() is not None:
            raise RuntimeError(f"Daphne exited:\n{stack.log('web')[-4000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{base_url}/healthz", timeout=5) as response,  # noqa: S310
        ):
            if response.status == 200:
                return stack
        if time.monotonic() > deadline:
            raise RuntimeError(f"Daphne not up after 300 s:\n{stack.log('web')[-4000:]}")
        time.sleep(0.5)


def users(base_url: str, prefix: str, count: int) -> list[str]:
    """Bearer tokens of `count` new users."""
    from chatclient.client import ChatClient

    tokens = []
    for _ in range(count):
        client = ChatClient(base_url)
        client.register(f"{prefix}-{uuid.uuid4().hex[:12]}@example.com", PASSWORD)
        tokens.append(client.login())
    return tokens


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (and its reaped children) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


# --- the abusive frames -----------------------------------------------------------------------


def _distinct_words(alphabet: str, chars: int, seed: int) -> str:
    rng = random.Random(seed)
    words: list[str] = []
    size = 0
    while size < chars:
        word = "".join(rng.choices(alphabet, k=rng.randint(3, 9)))
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:chars]


def _rtl_text(chars: int) -> str:
    # Hebrew and Arabic words with right-to-left overrides and embeddings around them.
    hebrew = "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd"
    arabic = "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645"
    piece = f"\u202e{hebrew}\u202c \u202b{arabic}\u202c \u200f{hebrew}\u200f "
    return (piece * (chars // len(piece) + 1))[:chars]


def _fit(text: str, limit: int = MAX_FRAME_BYTES - 400) -> str:
    """`text` cut so that its JSON (UTF-8, unescaped) fits a frame with room for the rest."""
    while len(json.dumps(text, ensure_ascii=False).encode()) > limit:
        text = text[: int(len(text) * 0.98)]
    return text


CYRILLIC = "".join(chr(c) for c in range(0x430, 0x450))  # 2 bytes each in UTF-8
CONTENTS: dict[str, str] = {
    "underscores": "_" * 30_000,
    "digits": "1" * MAX_CONTENT,
    "one letter": "a" * MAX_CONTENT,
    "emoji": _fit("\U0001f600" * 16_000),
    "combining marks": _fit("a" + "\u0301" * (MAX_CONTENT - 1)),
    "right-to-left": _fit(_rtl_text(MAX_CONTENT)),
    "zero-width": _fit("a\u200b" * 16_000),
    "short lines": "hi\n" * 10_666,
    "nested brackets": "(" * 16_000 + ")" * 16_000,
    "distinct words ~64 KB": _fit(_distinct_words(CYRILLIC, MAX_CONTENT, 1)),
    "distinct words ascii": _distinct_words(string.ascii_lowercase, MAX_CONTENT, 2),
}


def _send(content: str, request_id: str) -> str:
    return json.dumps(
        {"type": "chat.send", "request_id": request_id, "content": content}, ensure_ascii=False
    )


def _nested_options(depth: int) -> str:
    # Within the parser's depth (Python's json stops near 1,000), refused by the schema.
    nested = '{"x":' * depth + "1" + "}" * depth
    return '{"type":"chat.send","request_id":"%s","content":"hi","options":' + nested + "}"


INVALID: list[str] = [
    '{"type":"chat.send"}',
    '{"type":"no.such.type","request_id":"r"}',
    "[1,2,3]",
    '"just a string"',
    "null",
    '{"type":"chat.send","request_id":"r","content":123}',
    '{"type":"ping","unknown":{"a":[1,2,{"b":null}]}}',
    '{"type":"generation.subscribe","generation_id":"g","after_seq":-1}',
    '{"type":"chat.send","request_id":"' + "r" * 5000 + '","content":"hi"}',
    "1" * 5_000,  # past Python's digit limit: not a number it will parse
    # An unpaired surrogate behind 60,000 characters of text.
    '{"type":"chat.send","request_id":"r","content":"' + "x" * 60_000 + '\\ud800"}',
    '{"type":"chat.send","request_id":"r","content":"' + " " * 60_000 + '"}',  # blank
    '{"type":"chat.send","request_id":"r","content":"' + "y" * 40_000 + '"}',  # too large
]


@dataclass
class Kind:
    """One kind of abusive frame: `make(request_id)` gives the frame's text."""

    name: str
    text: str  # with "%s" where the request_id goes, or a fixed frame
    is_send: bool = False
    weight: int = 1

    def make(self, request_id: str) -> str:
        return self.text % request_id if "%s" in self.text else self.text


SUBSCRIBE = '{"type":"generation.subscribe","generation_id":"%s"}'


def kinds(repeated_request_id: str) -> list[Kind]:
    result = [
        Kind(f"send: {name}", _send(content, "REQ").replace("REQ", "%s"), is_send=True)
        for name, content in CONTENTS.items()
    ]
    result += [
        Kind("nested JSON past the parser", "[" * 32_000 + "]" * 32_000),
        Kind("nested JSON within the parser", _nested_options(900)),
        Kind("repeated request_id", _send("hello again", repeated_request_id), is_send=True),
        Kind("subscribe unknown id", SUBSCRIBE, weight=10),
        Kind("stop unknown id", '{"type":"generation.stop","generation_id":"%s"}', weight=10),
        Kind("over 64 KiB", _send("z" * (MAX_FRAME_BYTES + 100), "%s")),
    ]
    result += [Kind(f"invalid {i}", text) for i, text in enumerate(INVALID)]
    for kind in result:
        if kind.name != "over 64 KiB":
            assert len(kind.make("x" * 32).encode()) <= MAX_FRAME_BYTES, kind.name
    return result


# --- the abusers (a child process) ------------------------------------------------------------


@dataclass
class AbuseStats:
    sent: Counter[str] = field(default_factory=Counter)
    # Per chat.send kind, what its reply said (moderated: accepted, blocked, over the slots).
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    replies: Counter[str] = field(default_factory=Counter)
    closes: Counter[str] = field(default_factory=Counter)
    connects: int = 0


def outcome(reply: dict[str, Any]) -> str:
    kind = reply.get("type", "?")
    if kind == "moderation.blocked":
        return "unchecked" if "unchecked" in reply.get("categories", []) else "blocked"
    if kind != "error":
        return str(kind)
    message = str(reply.get("message", ""))
    if "answers can be generated at once" in message:
        return SLOTS_FULL
    if "Too many messages on this connection" in message:
        return "frame limit"
    if "messages per minute" in message:
        return "message rate"
    return f"error {reply.get('code')}"


SLOTS_FULL = "refused after moderation (3 answers at once)"
MODERATED = {"chat.accepted", "blocked", "unchecked", SLOTS_FULL}


async def abuse_connection(
    ws_url: str,
    token: str,
    stats: AbuseStats,
    *,
    seed: int,
    rate: float,
    in_flight: int,
    until: float,
) -> None:
    import websockets

    rng = random.Random(seed)
    repeated = f"repeat-{seed // 100}"  # one per user
    all_kinds = kinds(repeated_request_id=repeated)
    cycle = [k for k in all_kinds for _ in range(k.weight)]
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        try:
            connection = await websockets.connect(
                ws_url,
                additional_headers={"Authorization": f"Bearer {token}"},
                max_size=2**22,
                compression=None,
                proxy=None,
                open_timeout=30,
            )
        except Exception as error:
            stats.closes[f"connect failed: {type(error).__name__}"] += 1
            await asyncio.sleep(0.5 + rng.random())
            continue
        stats.connects += 1
        window = asyncio.Semaphore(in_flight)
        sends: dict[str, str] = {}

        async def read(
            connection: Any = connection,
            window: asyncio.Semaphore = window,
            sends: dict[str, str] = sends,
        ) -> None:
            async for raw in connection:
                reply = json.loads(raw)
                stats.replies[str(reply.get("type"))] += 1
                name = sends.pop(str(reply.get("request_id")), None)
                if name is not None:
                    stats.outcomes[(name, outcome(reply))] += 1
                if window._value < in_flight:  # one credit per answered frame
                    window.release()

        reader = asyncio.ensure_future(read())
        try:
            # Until the server closes the connection (4429, 1009) or the time is up.
            while loop.time() < until and not reader.done():
                rng.shuffle(cycle)
                for kind in cycle:
                    if loop.time() >= until or reader.done():
                        break
                    started = loop.time()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(window.acquire(), 5.0)  # unanswered: go on
                    request_id = uuid.uuid4().hex
                    if kind.name == "repeated request_id":
                        sends[repeated] = kind.name
                    elif kind.is_send:
                        sends[request_id] = kind.name
                    await connection.send(kind.make(request_id))
                    stats.sent[kind.name] += 1
                    if rate:
                        await asyncio.sleep(max(0.0, 1 / rate - (loop.time() - started)))
        except websockets.ConnectionClosed:
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)
        code = connection.close_code
        if code is not None and code != 1000:
            stats.closes[str(code)] += 1
            await asyncio.sleep(0.1 + 0.2 * rng.random())


def abusers_main(
    ws_url: str,
    tokens: list[str],
    options: dict[str, float],
    go: Any,
    results: Any,
) -> None:
    """The child process: waits for `go` (forked before the parent's event loop exists), then
    attacks for `options["seconds"]`; puts its counts on `results`."""
    go.wait()
    os.nice(10)
    stats = AbuseStats()

    async def run() -> None:
        until = asyncio.get_running_loop().time() + options["seconds"]
        await asyncio.gather(
            *(
                abuse_connection(
                    ws_url,
                    token,
                    stats,
                    seed=100 * u + c,
                    rate=options["rate"],
                    in_flight=int(options["in_flight"]),
                    until=until,
                )
                for u, token in enumerate(tokens)
                for c in range(int(options["connections"]))
            )
        )

    asyncio.run(run())
    results.put(
        {
            "sent": dict(stats.sent),
            "outcomes": [[k, o, n] for (k, o), n in stats.outcomes.items()],
            "replies": dict(stats.replies),
            "closes": dict(stats.closes),
            "connects": stats.connects,
        }
    )


# --- the measured users (this process) --------------------------------------------------------


@dataclass
class Pings:
    rtts: list[float] = field(default_factory=list)  # seconds
    refused: int = 0
    timeouts: int = 0
    reconnects: int = 0


@dataclass
class Sends:
    seconds: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass
class Connects:
    seconds: list[float] = field(default_factory=list)  # handshake to first pong
    failures: Counter[str] = field(default_factory=Counter)


class User:
    """One measured user's connection, opened before the attack and kept; reopened when the
    server drops it (counted)."""

    def __init__(self, base_url: str, token: str) -> None:
        from chatclient.client import ChatClient

        self.client = ChatClient(base_url, token=token)
        self.session: Any = None

    async def connected(self, until: float | None = None) -> Any:
        """The open connection; reopened until `until` (loop time; default: a minute)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + 60 if until is None else until
        while self.session is None:
            try:
                self.session = await self.client.open(open_timeout=30)
            except Exception:
                if loop.time() > until:
                    raise
                await asyncio.sleep(0.5)
        return self.session

    async def drop(self) -> None:
        if self.session is not None:
            with contextlib.suppress(Exception):
                await self.session.close()
        self.session = None


async def pinger(user: User, pings: Pings, *, interval: float, until: float) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(random.random() * interval)  # out of step with the other pingers
    while loop.time() < until:
        try:
            session = await user.connected(until)
        except Exception:
            return
        started = time.perf_counter()
        try:
            await session.send_frame({"type": "ping"})
            reply = await session.receive(timeout=PING_TIMEOUT)
        except TimeoutError:
            pings.timeouts += 1
            pings.rtts.append(PING_TIMEOUT)
            await user.drop()
            continue
        except Exception:
            pings.reconnects += 1
            await user.drop()
            continue
        elapsed = time.perf_counter() - started
        if reply.get("type") == "pong":
            pings.rtts.append(elapsed)
        else:
            pings.refused += 1
        await asyncio.sleep(max(0.0, interval - elapsed))


async def sender(user: User, sends: Sends, *, interval: float, until: float) -> None:
    """An ordinary user: a short message every `interval` seconds; the time to its answer
    (chat.accepted, or the refusal over 3 answers at once: both come after moderation)."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(random.random() * interval)
    while loop.time() < until:
        try:
            session = await user.connected(until)
        except Exception:
            return
        started = time.perf_counter()
        try:
            reply = await session.send("What is a good name for a cat?", timeout=60)
        except TimeoutError:
            sends.outcomes["no answer in 60 s"] += 1
            sends.seconds.append(60.0)
            continue
        except Exception:
            sends.outcomes["connection lost"] += 1
            await user.drop()
            continue
        elapsed = time.perf_counter() - started
        sends.seconds.append(elapsed)
        sends.outcomes[outcome(reply)] += 1
        await asyncio.sleep(max(0.0, interval - elapsed))


async def connector(
    base_url: str, token: str, connects: Connects, *, interval: float, until: float
) -> None:
    """A user opening the app: a new connection every `interval` seconds, timed from the
    handshake to its first pong, then closed."""
    from chatclient.client import ChatClient

    client = ChatClient(base_url, token=token)
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        started = time.perf_counter()
        try:
            session = await client.open(open_timeout=30)
        except Exception as error:
            connects.failures[type(error).__name__] += 1
        else:
            try:
                await session.send_frame({"type": "ping"})
                await session.receive(timeout=30)
                connects.seconds.append(time.perf_counter() - started)
            except Exception as error:
                connects.failures[f"first ping: {type(error).__name__}"] += 1
            finally:
                with contextlib.suppress(Exception):
                    await session.close()
        await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"n={len(ms)} p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
        f"max {max(ms, default=float('nan')):.1f} ms"
    )


@dataclass
class Measured:
    baseline: Pings
    pings: Pings
    sends: Sends
    connects: Connects
    daphne_cpu: float  # cores, during the measured attack


async def measure(
    stack: Any,
    tokens: dict[str, list[str]],
    go: Any,
    args: argparse.Namespace,
) -> Measured:
    """Baseline pings, then (after `go` starts the attack and its warm-up) the measured
    pings, sends and new connections. Pinger and sender connections open before either."""
    interval = args.ping_interval_ms / 1000
    pingers = [User(stack.base_url, t) for t in tokens["pinger"]]
    senders = [User(stack.base_url, t) for t in tokens["sender"]]
    for user in pingers + senders:
        await user.connected()
    loop = asyncio.get_running_loop()

    baseline = Pings()
    until = loop.time() + args.baseline_seconds
    await asyncio.gather(*(pinger(u, baseline, interval=interval, until=until) for u in pingers))
    print(f"baseline pings (no attack): {summary(baseline.rtts)}", flush=True)

    go.set()
    await asyncio.sleep(args.warmup)
    daphne = stack.processes["web"].pid
    cpu_before, wall_before = cpu_seconds(daphne), time.monotonic()
    pings, sends, connects = Pings(), Sends(), Connects()
    until = loop.time() + args.seconds
    await asyncio.gather(
        *(pinger(u, pings, interval=interval, until=until) for u in pingers),
        *(sender(u, sends, interval=args.send_interval, until=until) for u in senders),
        *(
            connector(stack.base_url, t, connects, interval=args.connect_interval, until=until)
            for t in tokens["connector"]
        ),
    )
    daphne_cpu = (cpu_seconds(daphne) - cpu_before) / (time.monotonic() - wall_before)
    for user in pingers + senders:
        await user.drop()
    return Measured(baseline, pings, sends, connects, daphne_cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured attack")
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="attack before measuring")
    parser.add_argument("--abusers", type=int, default=8, help="abusive users")
    parser.add_argument("--connections", type=int, default=4, help="per abusive user")
    parser.add_argument(
        "--abuser-rate", type=float, default=15.0, help="frames/s per connection; 0: no pause"
    )
    parser.add_argument("--in-flight", type=int, default=4, help="unanswered frames per conn")
    parser.add_argument("--pingers", type=int, default=4)
    parser.add_argument("--ping-interval-ms", type=float, default=200.0)
    parser.add_argument("--senders", type=int, default=2, help="ordinary users sending")
    parser.add_argument("--send-interval", type=float, default=5.0)
    parser.add_argument(
        "--connect-interval", type=float, default=2.0, help="a new connection every N s; 0: none"
    )
    parser.add_argument(
        "--limits-off",
        action="store_true",
        help="raise the frame and message rate limits (and the daily quota)",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="for Daphne"
    )
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder and logs")
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)

    print(f"machine: {machine()}", flush=True)
    print(
        f"mode: {'limits off' if args.limits_off else 'default limits'}; "
        f"{args.abusers} abusive users x {args.connections} connections, "
        f"{args.abuser_rate or 'unpaced'} frames/s each, {args.in_flight} in flight; "
        f"{args.pingers} pingers every {args.ping_interval_ms:.0f} ms; {args.senders} senders",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-abuse-"))
    stack = start_web(workdir, limits_off=args.limits_off, extra_env=extra_env)
    context = multiprocessing.get_context("fork")
    go, results = context.Event(), context.Queue()
    attack = None
    try:
        tokens = {
            name: users(stack.base_url, name, count)
            for name, count in [
                ("pinger", args.pingers),
                ("sender", args.senders),
                ("connector", 1 if args.connect_interval else 0),
                ("abuser", args.abusers),
            ]
        }
        options = {
            "connections": args.connections,
            "rate": args.abuser_rate,
            "in_flight": args.in_flight,
            "seconds": args.warmup + args.seconds + 1,
        }
        # Forked before this process runs an event loop; it waits for `go`.
        attack = context.Process(
            target=abusers_main, args=(stack.ws_url, tokens["abuser"], options, go, results)
        )
        attack.start()
        measured = asyncio.run(measure(stack, tokens, go, args))
        abuse = results.get(timeout=120)
        attack.join(timeout=30)
    finally:
        if attack is not None and attack.is_alive():
            attack.terminate()
        stack.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    baseline, pings, sends = measured.baseline, measured.pings, measured.sends
    daphne_cpu = measured.daphne_cpu

    print(f"\nDaphne CPU during the attack: {daphne_cpu * 100:.0f}% of one core")
    print("\nabusive frames sent (all connections):")
    for name, count in sorted(abuse["sent"].items()):
        print(f"  {count:7d}  {name}")
    print(f"  {sum(abuse['sent'].values()):7d}  in all; {abuse['connects']} connections opened")
    print(f"closes: {abuse['closes']}")
    print(f"replies by type: {abuse['replies']}")
    print("\nchat.send of each kind that reached input moderation (moderated / sent):")
    outcomes: dict[str, Counter[str]] = {}
    for name, result, count in abuse["outcomes"]:
        outcomes.setdefault(name, Counter())[result] += count
    for name in sorted(outcomes):
        moderated = sum(n for r, n in outcomes[name].items() if r in MODERATED)
        detail = ", ".join(f"{r} {n}" for r, n in outcomes[name].most_common())
        print(f"  {name}: {moderated} / {abuse['sent'].get(name, 0)} ({detail})")
    moderated_all = sum(
        n for counter in outcomes.values() for r, n in counter.items() if r in MODERATED
    )
    print(f"  in all: {moderated_all} moderated in {args.warmup + args.seconds:.0f} s")
    print(
        f"\nordinary users' chat.send, time to the answer: {summary(sends.seconds)}; "
        f"{dict(sends.outcomes)}"
    )
    connects = measured.connects
    print(
        f"new connections, handshake to first pong: {summary(connects.seconds)}; "
        f"failed: {dict(connects.failures) or 0}"
    )
    print(f"baseline pings (no attack): {summary(baseline.rtts)}")
    print(
        f"pings during the attack:    {summary(pings.rtts)}; refused {pings.refused}, "
        f"timeouts {pings.timeouts}, reconnects {pings.reconnects}"
    )
    if args.keep:
        print(f"stack folder (logs): {workdir}")
    p99 = percentile(pings.rtts, 0.99) * 1000
    worst = max(pings.rtts, default=float("inf")) * 1000
    met = p99 < TARGET_P99_MS and worst < TARGET_MAX_MS and not pings.refused
    print(
        f"targets: p99 < {TARGET_P99_MS:.0f} ms: {'met' if p99 < TARGET_P99_MS else 'MISSED'}; "
        f"max < {TARGET_MAX_MS:.0f} ms: {'met' if worst < TARGET_MAX_MS else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
