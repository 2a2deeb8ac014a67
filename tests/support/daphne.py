"""A Daphne subprocess for tests that serve one ASGI application without a whole stack."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def daphne_running(
    arguments: list[str], *, port: int, env: dict[str, str], log: Path, timeout: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m daphne <arguments>` (which must listen on 127.0.0.1:`port`), its output in
    `log`; yields once the port accepts connections, and stops it on the way out."""
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", *arguments],
            cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Daphne did not start:\n" + log.read_text()) from None
                time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
