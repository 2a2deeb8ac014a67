"""`make run` stops cleanly on Ctrl-C: every process it started, the engine's included.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group: make, scripts/run.sh,
its supervisors, both Celery workers, Daphne and vLLM's engine processes all get it at once.
The test does the same to a `make run` started in a session of its own, on its own port,
PostgreSQL database, Redis database, data directory (store, logs, beat schedule), and then
looks for any process of that session (or carrying its marker in the environment) left alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis

from tests.support.stack import REPO, free_port

pytestmark = pytest.mark.e2e

# Its own PostgreSQL database (run.sh's setup creates and migrates it) and Redis database.
DATABASE = os.environ.get("MAKE_RUN_DATABASE", "chat_make_run")
REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('MAKE_RUN_REDIS_DB', '2')}"
READY_LINE = "The app is running at"
# Setup (idempotent after the first time) plus loading the model on 2 cores.
START_TIMEOUT = 600.0
STOP_TIMEOUT = 60.0
# Once make has exited (the prompt is back), a moment for processes already exiting.
EXIT_GRACE = 2.0
MARKER = "CHAT_MAKE_RUN_TEST"
# What scripts/run.sh logs when its supervisor restarts a worker that exited.
RESTART_LINE = "exited, restarting"


def _processes(session: int, token: str) -> dict[int, str]:
    """Live processes of the session, or whose environment carries the token (a process that
    left the session would still be found): pid -> `comm: command line`."""
    found: dict[int, str] = {}
    needle = f"{MARKER}={token}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        proc = Path("/proc", entry)
        try:
            stat = (proc / "stat").read_text()
            # Fields after the command name: state ppid pgrp session ...
            state, _ppid, _pgrp, sid = stat[stat.rindex(")") + 2 :].split()[:4]
            if state in ("Z", "X"):
                continue  # already dead, only not reaped
            ours = int(sid) == session
            if not ours:
                with contextlib.suppress(OSError):
                    ours = needle in (proc / "environ").read_bytes().split(b"\0")
            if ours:
                comm = (proc / "comm").read_text().strip()
                args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found[int(entry)] = f"{comm}: {args.strip()[:200]}"
        except (OSError, ValueError):
            continue  # gone meanwhile
    return found


def _describe(processes: dict[int, str]) -> str:
    return "\n".join(f"  {pid} {line}" for pid, line in sorted(processes.items())) or "  none"


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no output)"


def _logs(data_dir: Path) -> str:
    return "\n".join(
        f"--- {log.name} ---\n{_tail(log, 3000)}" for log in sorted(data_dir.glob("log/*.log"))
    )


def _default_signals() -> None:
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(number, signal.SIG_DFL)


class MakeRun:
    """`make run` in a session of its own, on its own port, databases and data directory."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.token = uuid.uuid4().hex
        self.data_dir = tmp_path / "var"
        self.output = tmp_path / "make-run.out"
        env = {
            **os.environ,
            MARKER: self.token,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "true",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_TRUSTED_ORIGINS": self.base_url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            # Not the databases, Redis database, store, logs or beat schedule of another app.
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
            "REDIS_URL": REDIS_URL,
            "CELERY_BROKER_URL": REDIS_URL,
            "CACHE_KEY_PREFIX": "make-run-test",
            # Several stacks share one PostgreSQL server: no thread keeps an idle connection.
            "DATABASE_CONN_MAX_AGE": "0",
            "DATA_DIR": str(self.data_dir),
            "MONGODB_URL": f"embedded://{self.data_dir / 'store'}",
            # The prepared model is shared (only read once prepared); DATA_DIR would move it.
            "INFERENCE_MODEL_DIR": os.environ.get("INFERENCE_MODEL_DIR", str(REPO / "var/models")),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
        with self.output.open("wb") as out:
            self.make = subprocess.Popen(
                ["make", "run"],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # make leads its own session and process group
                # As in a terminal: a runner that started these tests in the background (a
                # non-interactive shell's `&`) passed SIGINT down ignored, and an ignored
                # signal stays ignored across exec.
                preexec_fn=_default_signals,
            )
        self.session = self.make.pid

    def processes(self) -> dict[int, str]:
        return _processes(self.session, self.token)

    def logs(self) -> str:
        return f"--- make run ---\n{_tail(self.output)}\n{_logs(self.data_dir)}"

    def wait_for_output(self, text: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output.read_text(errors="replace"):
            assert self.make.poll() is None, (
                f"make run exited ({self.make.returncode}) before {text!r}:\n{self.logs()}"
            )
            assert time.monotonic() < deadline, (
                f"no {text!r} from make run after {timeout:.0f} s:\n{self.logs()}"
            )
            time.sleep(0.5)

    def ctrl_c(self) -> float:
        """SIGINT to the whole foreground process group, as a terminal sends it; asserts that
        make exits and that no process of the run is left. Returns how long make took."""
        restarts = _logs(self.data_dir).count(RESTART_LINE)
        os.killpg(self.session, signal.SIGINT)
        interrupted = time.monotonic()
        try:
            self.make.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"make run still runs {STOP_TIMEOUT:.0f} s after Ctrl-C; its processes "
                f"(killed now):\n{_describe(self.processes())}\n{self.logs()}"
            )
        took = time.monotonic() - interrupted
        deadline = time.monotonic() + EXIT_GRACE
        left = self.processes()
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = self.processes()
        assert not left, (
            f"make exited {took:.1f} s after Ctrl-C, but these processes of make run still "
            f"ran {EXIT_GRACE:.0f} s later (killed now):\n{_describe(left)}\n{self.logs()}"
        )
        logs = _logs(self.data_dir)
        assert logs.count(RESTART_LINE) == restarts, f"a worker restarted after Ctrl-C:\n{logs}"
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", self.port)) != 0, "the port still accepts"
        return took

    def kill(self) -> None:
        """Leave nothing behind, whatever failed."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.session, signal.SIGKILL)
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.make.wait(timeout=10)


def test_ctrl_c_stops_every_process_of_make_run(tmp_path: Path) -> None:
    run = MakeRun(tmp_path)
    try:
        # The positive first: the app answers, and the worker has its engine up.
        run.wait_for_output(READY_LINE)
        status, body = _get(f"{run.base_url}/readyz")
        assert (status, body.get("checks")) == (200, {
            "postgres": "ok", "store": "ok", "redis": "ok", "worker": "ok",
        }), body  # fmt: skip
        running = run.processes()
        # The worker that reported ready is this run's (not another app's on Redis database 2).
        client = redis.Redis.from_url(REDIS_URL)
        reported = {
            json.loads(client.get(key) or b"{}").get("pid")
            for key in client.scan_iter(match="chat:worker:*")
        }
        assert reported & set(running), (
            f"no worker of this run reported ready (pids {reported}):\n{_describe(running)}"
        )
        assert any("VLLM" in line for line in running.values()), (
            f"no engine process (VLLM::EngineCore) among:\n{_describe(running)}"
        )
        assert sum("celery" in line for line in running.values()) >= 2, _describe(running)
        assert any("config.server" in line for line in running.values()), _describe(running)
        # The web server and the maintenance worker run on the allocator scripts/run.sh
        # preloads for them (APP_ALLOCATOR).
        app = [
            pid
            for pid, line in running.items()
            if "config.server" in line or "inference.maintenance" in line
        ]
        without = [pid for pid in app if "libjemalloc" not in Path(f"/proc/{pid}/maps").read_text()]
        assert len(app) >= 2 and not without, f"not on jemalloc: {without} of\n{_describe(running)}"

        took = run.ctrl_c()
        print(f"make run stopped {took:.1f} s after Ctrl-C, every process of it")
    finally:
        run.kill()
