"""Where a long-running process's memory goes: a diagnosis for the soak's flat-memory check
(`bench/soak.py --trace-memory`), off unless asked for.

With `MEMORY_TRACE_DIR` set, `install()` (called by the web server once it has loaded what it
keeps for life, and by the Celery workers) makes SIGUSR2 write a report to
`<MEMORY_TRACE_DIR>/<pid>.txt`: the first signal takes the baseline, each later one writes what
grew since it. Every report holds what Python's own view misses:

- the C allocator's (glibc's `mallinfo2`): memory it has handed out and not had back, and
  memory freed but kept in its arenas. Growth "in use" is native memory something still
  holds (a C library's buffers, a leak); growth "free" is fragmentation;
- the process's threads, and the live Python objects by type (the types whose count grew
  most: a leaked connection or thread is a small Python object with a large native part).
  Each report runs a full collection first and says what it freed: cyclic garbage (a dropped
  SQLite connection, an exception with its frames) holds memory until one runs.

`MEMORY_TRACE_FRAMES` > 0 (the default, 12) also traces Python's allocations (`tracemalloc`,
that many frames each), and the report names the allocation sites that grew most, with their
tracebacks. Tracing costs CPU and memory, and a worker that loads an engine starts too slowly
under it (past the stack's 5 minutes): such a worker installs the report only with
`MEMORY_TRACE_FRAMES=0`. A process forked afterwards (Celery's embedded beat) inherits the
handler, and writes its own file. A diagnosis, never a production setting.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import json
import os
import signal
import threading
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

TOP_SITES = 15
TOP_TYPES = 15


@dataclass(frozen=True, slots=True)
class Baseline:
    native: dict[str, float]
    types: collections.Counter[str]
    snapshot: tracemalloc.Snapshot | None


_baseline: dict[int, Baseline] = {}  # by pid: a forked child takes its own


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def native() -> dict[str, float]:
    """The C allocator's figures in MB (empty where glibc's `mallinfo2` is not there, as under
    jemalloc or musl), the process's RSS and its threads."""
    figures: dict[str, float] = {}
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        mallinfo2 = None
    if mallinfo2 is not None:
        mallinfo2.restype = _MallInfo2
        info = mallinfo2()
        figures |= {
            "malloc in use": (info.uordblks + info.hblkhd) / 2**20,
            "malloc free in arenas": info.fordblks / 2**20,
            "malloc mmapped": info.hblkhd / 2**20,
        }
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    figures["rss"] = float(fields["VmRSS"].split()[0]) / 1024  # kB
    figures["threads"] = float(fields["Threads"])
    figures["python threads"] = threading.active_count()
    return figures


def _types() -> collections.Counter[str]:
    """The live objects by type, counted in a forked child. Not here: `gc.get_objects()`
    hands out every tracked object, a tuple another thread is still building included, and a
    tuple with a second reference cannot grow (`SystemError: bad argument to internal
    function` in that thread; it broke a vLLM output handler in the soak). The child has one
    thread and only a copy of the others' objects."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: count, send, leave at once
        try:
            counts = collections.Counter(
                f"{type(thing).__module__}.{type(thing).__qualname__}" for thing in gc.get_objects()
            )
            with os.fdopen(write, "w", encoding="utf-8") as pipe:
                json.dump(counts, pipe)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, encoding="utf-8") as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    return collections.Counter(json.loads(text) if text else {})


def _snapshot() -> tracemalloc.Snapshot | None:
    if not tracemalloc.is_tracing():
        return None
    # Allocations of the tracing itself are not the process's.
    return tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),)
    )


def report(directory: Path) -> str:
    """Take the baseline (the first call in this process) or write what grew since it."""
    pid = os.getpid()
    # Live objects only: cyclic garbage waits for a full collection, however long that takes
    # in a large process; what it held is counted before the collection and freed by it.
    held = native()
    unreachable = gc.collect()
    now = Baseline(native=native(), types=_types(), snapshot=_snapshot())
    collection = (
        f"a full collection freed {unreachable} objects; malloc in use "
        f"{held.get('malloc in use', 0):.1f} -> {now.native.get('malloc in use', 0):.1f}"
    )
    baseline = _baseline.get(pid)
    if baseline is None:
        _baseline[pid] = now
        lines = [f"pid {pid}: baseline taken, {_traced_mb():.1f} MB traced"]
        lines += [collection, *(f"{name}: {value:.1f}" for name, value in now.native.items())]
    else:
        lines = [f"pid {pid}: {_traced_mb():.1f} MB traced", collection]
        lines += [
            f"{name}: {baseline.native.get(name, 0):.1f} -> {value:.1f}"
            for name, value in now.native.items()
        ]
        grown = now.types.copy()
        grown.subtract(baseline.types)
        lines.append("object types whose count grew most:")
        lines += [f"{count:+d} {name}" for name, count in grown.most_common(TOP_TYPES) if count]
        if now.snapshot is not None and baseline.snapshot is not None:
            lines.append("the sites that grew most")
            for stat in now.snapshot.compare_to(baseline.snapshot, "traceback")[:TOP_SITES]:
                lines.append(
                    f"{stat.size_diff / 2**20:+.2f} MB, {stat.count_diff:+d} blocks "
                    f"(now {stat.size / 2**20:.2f} MB)"
                )
                lines += [f"    {line}" for line in stat.traceback.format(most_recent_first=True)]
    text = "\n".join(lines) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{pid}.txt").write_text(text, encoding="utf-8")
    return text


def _traced_mb() -> float:
    return tracemalloc.get_traced_memory()[0] / 2**20


def frames() -> int:
    return max(0, int(os.environ.get("MEMORY_TRACE_FRAMES", "12")))


def install(*, engine: bool = False) -> bool:
    """Answer SIGUSR2 (and trace Python's allocations, unless `MEMORY_TRACE_FRAMES` is 0), when
    `MEMORY_TRACE_DIR` asks for it; False when not. `engine`: the process loads a model, whose
    start tracing slows too much: it installs only without tracing."""
    directory = os.environ.get("MEMORY_TRACE_DIR", "")
    if not directory or tracemalloc.is_tracing() or (engine and frames()):
        return False
    if frames():
        tracemalloc.start(frames())

    def on_signal(signum: int, frame: FrameType | None) -> None:
        report(Path(directory))

    signal.signal(signal.SIGUSR2, on_signal)
    return True
