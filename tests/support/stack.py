"""Start the real stack in subprocesses: Daphne, a Celery worker hosting vLLM, on real services.

Used once per test session by the end-to-end tests and by the pipeline benchmark. The stack
gets its own PostgreSQL database, Redis database and embedded conversation store, so that it
never shares state with the unit tests' transactions or with a developer's running app.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DEFAULT_QUEUE = "inference.smollm2-135m"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    base_url: str
    ws_url: str
    env: dict[str, str]
    workdir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_process(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def start_worker(
        self, *, concurrency: int = 32, name: str = "worker", queue: str = DEFAULT_QUEUE
    ) -> subprocess.Popen[bytes]:
        return self.start_process(
            name,
            [
                str(VENV_BIN / "celery"),
                "-A",
                "config",
                # No start banner: it is printed, not logged (config/logs.py).
                "--quiet",
                "worker",
                "-P",
                "threads",
                "-c",
                str(concurrency),
                "-Q",
                queue,
                "-n",
                f"{name}-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "info",
            ],
        )

    def start_beat(self) -> subprocess.Popen[bytes]:
        """Celery beat, embedded in a small maintenance worker that runs the reaper: it must
        keep working while every inference worker is dead (as scripts/run.sh runs it)."""
        schedule = self.workdir / "celerybeat-schedule"
        return self.start_process(
            "beat",
            [
                str(VENV_BIN / "celery"), "-A", "config", "--quiet", "worker",
                "-B", "-s", str(schedule),
                "-Q", "inference.maintenance", "-P", "threads", "-c", "2",
                "-n", f"maintenance-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
                "-l", "info",
            ],
            env=allocator_env(self.env),
        )  # fmt: skip

    def stop_process(self, name: str, *, sig: int = signal.SIGTERM, grace: float = 30.0) -> None:
        process = self.processes.pop(name, None)
        if process is None:
            return
        if process.poll() is None:
            os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace)
        # The engine's processes may outlive their parent: end the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for name in list(self.processes):
            self.stop_process(name)

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_ready(self, *, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited early:\n{self.log(name)[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/readyz", timeout=5) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as error:
                last = error.read().decode(errors="replace")
            except OSError as error:
                last = str(error)
            time.sleep(1)
        raise RuntimeError(
            f"stack not ready after {timeout}s: {last}\n{self.log('worker')[-4000:]}"
        )


def wait_for_ok(
    url: str,
    process: subprocess.Popen[bytes],
    *,
    what: str,
    log: Callable[[], str],
    timeout: float,
) -> None:
    """Poll `url` until it answers 200; a RuntimeError with the tail of `log()` when `process`
    exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:  # refused, reset, or an HTTP error status
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start:\n" + log()[-4000:])
        time.sleep(0.3)


def daphne_argv(*, port: int) -> list[str]:
    """Daphne as scripts/run.sh runs it: with the protocol's frame limit and keepalive from
    settings (config/server.py), which it reads from the environment it is started with."""
    return [
        sys.executable, "-m", "config.server",
        "-b", "127.0.0.1",
        "-p", str(port),
        "config.asgi:application",
    ]  # fmt: skip


def allocator_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The C allocator scripts/run.sh gives the web server and the maintenance worker:
    jemalloc preloaded where it is installed, unless APP_ALLOCATOR says "system"."""
    if environ.get("APP_ALLOCATOR", "jemalloc") != "jemalloc":
        return {}
    listed = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    if "libjemalloc.so.2 " not in listed:
        return {}
    preloaded = environ.get("LD_PRELOAD", "")
    return {"LD_PRELOAD": ":".join(filter(None, ["libjemalloc.so.2", preloaded]))}


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True)


def start_stack(
    *,
    workdir: Path,
    database: str | None = None,
    redis_db: int | None = None,
    redis_url: str | None = None,
    with_beat: bool = False,
    worker_concurrency: int = 32,
    extra_env: dict[str, str] | None = None,
) -> Stack:
    # Separate runs on one machine (two developers' suites, a benchmark) pick their own.
    database = database or os.environ.get("E2E_DATABASE", "chat_e2e")
    redis_db = redis_db if redis_db is not None else int(os.environ.get("E2E_REDIS_DB", "15"))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "REDIS_URL": redis_url or f"redis://127.0.0.1:6379/{redis_db}",
        # Explicitly: a developer's .env must not point this stack's tasks at another broker.
        "CELERY_BROKER_URL": redis_url or f"redis://127.0.0.1:6379/{redis_db}",
        "MONGODB_URL": f"embedded://{workdir / 'store'}",
        "CACHE_KEY_PREFIX": f"e2e-{database}",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_TRUSTED_ORIGINS": base_url,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        # Every test client registers from 127.0.0.1; real ones come from many addresses.
        "REGISTRATION_IP_LIMIT": "100000",
        # Test clients reconnect faster than people, all from 127.0.0.1, and the security
        # tests fail handshakes on purpose (tests/e2e/test_connect_rate.py tests the limits).
        "CHAT_CONNECTS_PER_MINUTE_PER_CREDENTIAL": "600",
        "CHAT_FAILED_CONNECTS_PER_MINUTE_PER_ADDRESS": "0",
        # A test run keeps several stacks up on one PostgreSQL server (max_connections 100):
        # no thread keeps an idle connection (a stack held 21 with the default 60 s).
        "DATABASE_CONN_MAX_AGE": "0",
        # Every process of the stack writes its metrics here; /metrics merges them.
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        **(extra_env or {}),
    }
    Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", database],
        check=True,
    )
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    _manage(env, "migrate", "--noinput", "-v", "0")

    stack = Stack(
        base_url=base_url, ws_url=f"ws://127.0.0.1:{port}/ws/chat/", env=env, workdir=workdir
    )
    try:
        stack.start_worker(concurrency=worker_concurrency)
        stack.start_process("web", daphne_argv(port=port), env=allocator_env(env))
        if with_beat:
            stack.start_beat()
        stack.wait_ready()
    except BaseException:
        stack.stop()
        raise
    return stack
