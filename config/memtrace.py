"""Where a long-running process's memory goes: a diagnosis for the soak's flat-memory check
(`bench/soak.py --trace-memory`), off unless asked for.

With `MEMORY_TRACE_DIR` set, `install()` (called by the web server once it has loaded what it
keeps for life, and by the maintenance worker; not by a worker that loads an engine, whose
start it slows past the stack's patience) starts tracing Python's allocations (`tracemalloc`, with
`MEMORY_TRACE_FRAMES` frames each) and makes SIGUSR2 write a report to
`<MEMORY_TRACE_DIR>/<pid>.txt`: the first signal takes the baseline, each later one writes
the allocation sites that grew most since it, largest first, with their tracebacks. A process
forked afterwards (Celery's embedded beat) inherits the tracing and the handler, and writes
its own file. Tracing costs CPU and memory: a diagnosis, never a production setting.
"""

from __future__ import annotations

import os
import signal
import tracemalloc
from pathlib import Path
from types import FrameType

TOP_SITES = 15
_baseline: dict[int, tracemalloc.Snapshot] = {}  # by pid: a forked child takes its own


def _snapshot() -> tracemalloc.Snapshot:
    # Allocations of the tracing itself are not the process's.
    return tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),)
    )


def report(directory: Path) -> str:
    """Take the baseline (the first call in this process) or write what grew since it."""
    pid = os.getpid()
    snapshot = _snapshot()
    baseline = _baseline.get(pid)
    if baseline is None:
        _baseline[pid] = snapshot
        text = f"pid {pid}: baseline taken, {_traced_mb():.1f} MB traced\n"
    else:
        lines = [f"pid {pid}: {_traced_mb():.1f} MB traced; the sites that grew most"]
        for stat in snapshot.compare_to(baseline, "traceback")[:TOP_SITES]:
            lines.append(
                f"{stat.size_diff / 2**20:+.2f} MB, {stat.count_diff:+d} blocks "
                f"(now {stat.size / 2**20:.2f} MB)"
            )
            lines.extend(f"    {line}" for line in stat.traceback.format(most_recent_first=True))
        text = "\n".join(lines) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{pid}.txt").write_text(text, encoding="utf-8")
    return text


def _traced_mb() -> float:
    return tracemalloc.get_traced_memory()[0] / 2**20


def install() -> bool:
    """Start tracing and answer SIGUSR2, when `MEMORY_TRACE_DIR` asks for it; False when not."""
    directory = os.environ.get("MEMORY_TRACE_DIR", "")
    if not directory or tracemalloc.is_tracing():
        return False
    tracemalloc.start(max(1, int(os.environ.get("MEMORY_TRACE_FRAMES", "12"))))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        report(Path(directory))

    signal.signal(signal.SIGUSR2, on_signal)
    return True
