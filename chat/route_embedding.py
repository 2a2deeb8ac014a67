"""The message embedding the by-task router classifies with, cheap enough for every message.

A full MiniLM forward pass costs about 11 ms of CPU for a short message on this machine (more
when the cores are shared), past the router's budget of 5 ms. `StaticMiniLM` distils the same
model into a table: each word piece of MiniLM's vocabulary is run through the model once,
alone between [CLS] and [SEP], and its mean-pooled output kept; a message's embedding is then
the normalised mean of its word pieces' rows (tokenising plus a mean: well under a millisecond).
On the labelled routing set it routes about as well as the full model (docs/architecture.md,
"The automatic router"; `bench/router.py` measures both).

The table (30,522 rows of 384 float16, 23 MB) is computed once per machine, about 10 s on a
free core, and kept in `MODERATION_SEMANTIC_CACHE_DIR`; `manage.py router_table` builds it
ahead (`make run` does). Until it exists a process builds it on a background thread and
classifies with the full model meanwhile. `ROUTER_EMBEDDING=full` always uses the full model.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
from django.conf import settings

from moderation.checks.embedders import MINILM, MiniLMEncoder, get_embedder

logger = logging.getLogger(__name__)

TABLE_VERSION = 1
BATCH = 512
# Word pieces of a message that count: the task shows in its start, and it bounds the work.
MAX_PIECES = 64


def table_path() -> Path:
    return (
        Path(settings.MODERATION_SEMANTIC_CACHE_DIR)
        / f"router-{MINILM}-static-v{TABLE_VERSION}.npy"
    )


def build_table(encoder: MiniLMEncoder, path: Path | None = None) -> np.ndarray:
    """Compute the static table and write it to `path` (default `table_path()`)."""
    size = encoder.vocabulary_size
    table = np.zeros((size, 384), dtype=np.float32)
    for start in range(0, size, BATCH):
        stop = min(size, start + BATCH)
        table[start:stop] = encoder.vocabulary_vectors(start, stop)
    table = table.astype(np.float16)
    path = path or table_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")
    np.save(partial, table, allow_pickle=False)
    partial.replace(path)  # atomic: a reader never sees half a table
    return table


class StaticMiniLM:
    """Embeds texts as the normalised mean of their word pieces' table rows."""

    name = f"{MINILM}-static"

    def __init__(self, encoder: MiniLMEncoder, table: np.ndarray) -> None:
        self.encoder = encoder
        self.table = table.astype(np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            ids = self.encoder.token_ids(text, max_tokens=MAX_PIECES)
            vector = self.table[ids].mean(axis=0) if ids else np.zeros(self.table.shape[1])
            norm = float(np.linalg.norm(vector))
            rows.append(vector / norm if norm else vector)
        return np.stack(rows).astype(np.float32)


_lock = threading.Lock()
_static: StaticMiniLM | None = None
_building: threading.Thread | None = None


def _load_or_build() -> None:
    global _static
    encoder = get_embedder(MINILM)
    assert isinstance(encoder, MiniLMEncoder)
    path = table_path()
    try:
        table = np.load(path, allow_pickle=False) if path.exists() else None
    except (OSError, ValueError):
        table = None
    if table is None or table.shape != (encoder.vocabulary_size, 384):
        logger.info("router: computing the static MiniLM table into %s", path)
        table = build_table(encoder, path)
    _static = StaticMiniLM(encoder, table)


def _build_logged() -> None:
    try:
        _load_or_build()
    except Exception:
        logger.exception("router: could not build the static MiniLM table")


def encoder() -> StaticMiniLM | MiniLMEncoder:
    """The embedder to classify with now: the static table when ready (started in the
    background at the first call), else the full model."""
    global _building
    full = get_embedder(MINILM)
    assert isinstance(full, MiniLMEncoder)
    if settings.ROUTER_EMBEDDING == "full":
        return full
    if _static is not None:
        return _static
    with _lock:
        if _building is None:
            if table_path().exists():
                _load_or_build()  # reading the file: ~50 ms, once
                if _static is not None:
                    return _static
            _building = threading.Thread(target=_build_logged, name="router-table", daemon=True)
            _building.start()
    return full


def ready() -> StaticMiniLM:
    """The static embedder, loaded or built now (a command, the bench)."""
    if _static is None:
        _load_or_build()
    assert _static is not None
    return _static
