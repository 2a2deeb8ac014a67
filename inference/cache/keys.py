"""What makes two requests the same answer: the keys of the response cache.

An exact entry is keyed on the model's namespace (`cache_namespace`: its name and the identity
of its weights and tokenizer, so that every entry of a model version dies when the version
changes), the partition (the user, or everyone when the model's admin chose to share), and a
digest of the whole context (system prompt and every turn, in order) and of the sampling
parameters the engine would get. Only deterministic requests are cached: temperature 0, or a
fixed seed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from chat.limits import key as redis_key

# Bounded: a weights "directory" that is really a large tree (a hub cache) is not walked.
STAMPED_FILES_MAX = 64
# vLLM treats a temperature below this as greedy.
GREEDY_BELOW = 1e-5
SHARED = "shared"


def _files_stamp(location: str) -> list[tuple[str, int, int]]:
    """Name, size and modification time of the files at `location` (a file, or a directory's
    first files by name): re-preparing weights in place changes them. Empty for a hub id."""
    path = Path(location)
    try:
        if path.is_file():
            files = [path]
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file())[:STAMPED_FILES_MAX]
        else:
            return []
        return [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    except OSError:
        return []


def cache_namespace(model: Any, version: str = "") -> str:
    """The version identity of `model` that every cache key carries: its name, its registry
    version (`version`: the ModelVersion id that serves it; another version, even on the same
    weights, may have another template or sampling), and a digest of where its weights and
    tokenizer are and of their files."""
    identity = {
        "version": version,
        "weights": model.weights_location,
        "tokenizer": model.tokenizer_location,
        "files": [_files_stamp(model.weights_location), _files_stamp(model.tokenizer_location)],
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return f"{model.name}@{digest}"


def partition(model: Any, owner_id: int) -> str:
    """Whose answers a request may get: its user's, unless the model shares them."""
    return SHARED if getattr(model, "cache_partition", "user") == SHARED else f"u{int(owner_id)}"


def deterministic(sampling: Any) -> bool:
    """Greedy decoding, or sampling with a fixed seed: the same request gives the same answer."""
    return float(sampling.temperature) < GREEDY_BELOW or sampling.seed is not None


def sampling_fingerprint(sampling: Any) -> str:
    """Every sampling parameter the engine gets (vLLM's SamplingParams lists all its fields in
    its repr, so a parameter added there is keyed on without a change here)."""
    return repr(sampling)


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def answer_key(
    *, namespace: str, partition: str, messages: list[dict[str, str]], sampling: Any
) -> str:
    """The exact entry of this context (system prompt, every earlier turn, this message) with
    these sampling parameters."""
    context = [[m["role"], m["content"]] for m in messages]
    digest = _digest({"context": context, "sampling": sampling_fingerprint(sampling)})
    return redis_key("cache", "answer", namespace, partition, digest)


def first_question(messages: list[dict[str, str]]) -> str | None:
    """The user's question when it opens the conversation (after a system prompt at most):
    the only requests the semantic cache answers. None otherwise."""
    turns = [m for m in messages if m["role"] != "system"]
    if len(turns) != 1 or turns[0]["role"] != "user" or len(messages) - len(turns) > 1:
        return None
    return turns[0]["content"]


def semantic_scope(
    *, namespace: str, partition: str, messages: list[dict[str, str]], sampling: Any
) -> str:
    """The semantic index that a first question is compared within: same model version, same
    partition, same system prompt, same sampling. Only the question may differ."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    digest = _digest({"system": system, "sampling": sampling_fingerprint(sampling)})
    return redis_key("cache", "semantic", namespace, partition, digest)
