"""Calibrate the semantic cache's threshold on labelled question pairs, and print the figures.

The pairs (`inference/data/semantic_cache_pairs.jsonl`) are paraphrases (the same question,
one answer fits both: `same: true`) and near misses (close in wording, another answer: another
city, number, direction or subject: `same: false`). Both questions are embedded with
all-MiniLM-L6-v2, as the cache does (`inference.cache.semantic.embed`), and a pair is a hit
when their cosine similarity reaches the threshold and the word checks of
`inference.cache.guard` (same numbers, no swapped direction) pass, as in the cache. The
figures without the guard are printed too.

The threshold printed is the lowest one at which at least TARGET of the hits are truly
equivalent (precision), on the whole set; a two-fold check calibrates on one half and
measures on the other, to show how much the figure owes to the set it was chosen on. The hit
rate is the share of paraphrase pairs that hit.

    .venv/bin/python bench/cache_threshold.py
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from inference.cache.guard import same_question  # noqa: E402
from inference.cache.semantic import embed  # noqa: E402

PAIRS = REPO / "inference" / "data" / "semantic_cache_pairs.jsonl"
TARGET = 0.99


def load() -> list[tuple[str, str, bool]]:
    rows = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    return [(row["a"], row["b"], bool(row["same"])) for row in rows]


def scored(pairs: list[tuple[str, str, bool]], *, guarded: bool) -> list[tuple[float, bool]]:
    """Each pair's similarity (0 where the guard refuses it) and label."""
    return [
        (float(embed(a) @ embed(b)) if not guarded or same_question(a, b) else 0.0, same)
        for a, b, same in pairs
    ]


def at(scores: list[tuple[float, bool]], threshold: float) -> tuple[float, float, int, int]:
    """Precision, hit rate on paraphrases, hits and false hits at `threshold`."""
    hits = [same for score, same in scores if score >= threshold]
    false_hits = hits.count(False)
    paraphrases = sum(1 for _, same in scores if same)
    precision = (len(hits) - false_hits) / len(hits) if hits else 1.0
    return precision, (len(hits) - false_hits) / paraphrases, len(hits), false_hits


def calibrate(scores: list[tuple[float, bool]]) -> float:
    """The lowest threshold (among the observed scores) whose precision reaches TARGET."""
    for threshold in sorted({round(score, 4) for score, _ in scores}):
        if at(scores, threshold)[0] >= TARGET:
            return threshold
    return 1.0


def main() -> None:
    pairs = load()
    unguarded = scored(pairs, guarded=False)
    print("similarity alone:")
    for threshold in (0.90, 0.94, 0.96, 0.98):
        precision, rate, hits, false_hits = at(unguarded, threshold)
        print(f"  {threshold:.2f}: precision {precision:.3f}, hit rate {rate:.2f}, {hits} hits")
    print(f"  calibrated: {calibrate(unguarded):.4f}\n\nwith the guard (as the cache runs):")
    scores = scored(pairs, guarded=True)
    same = sorted(s for s, label in scores if label)
    different = sorted(s for s, label in scores if not label)
    print(f"{len(pairs)} pairs: {len(same)} paraphrases, {len(different)} near misses")
    print(f"paraphrase similarity: min {same[0]:.3f}, median {same[len(same) // 2]:.3f}")
    print(
        f"near-miss similarity:  median {different[len(different) // 2]:.3f}, "
        f"max {different[-1]:.3f}"
    )
    print("\nthreshold  precision  hit rate  hits  false hits")
    for threshold in (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98):
        precision, rate, hits, false_hits = at(scores, threshold)
        print(f"{threshold:9.2f}  {precision:9.3f}  {rate:8.2f}  {hits:4d}  {false_hits:10d}")
    chosen = calibrate(scores)
    precision, rate, hits, false_hits = at(scores, chosen)
    print(
        f"\ncalibrated threshold (precision >= {TARGET}): {chosen:.4f}: precision {precision:.3f}, "
        f"hit rate {rate:.2f} ({hits} hits, {false_hits} false)"
    )
    # Two-fold check, repeated over shuffles: calibrate on one half, measure on the other.
    held_out: list[tuple[float, float]] = []
    for seed in range(10):
        order = list(range(len(scores)))
        random.Random(seed).shuffle(order)
        half = len(order) // 2
        for train, test in ((order[:half], order[half:]), (order[half:], order[:half])):
            threshold = calibrate([scores[i] for i in train])
            precision, rate, _, _ = at([scores[i] for i in test], threshold)
            held_out.append((precision, rate))
    mean_precision = sum(p for p, _ in held_out) / len(held_out)
    mean_rate = sum(r for _, r in held_out) / len(held_out)
    worst = min(p for p, _ in held_out)
    print(
        f"held-out halves (20 splits): precision mean {mean_precision:.3f} (worst {worst:.3f}), "
        f"hit rate mean {mean_rate:.2f}"
    )
    deployed = settings.INFERENCE_SEMANTIC_CACHE_THRESHOLD
    precision, rate, hits, false_hits = at(scores, deployed)
    print(
        f"deployed threshold (INFERENCE_SEMANTIC_CACHE_THRESHOLD): {deployed:.4f}: precision "
        f"{precision:.3f}, hit rate {rate:.2f} ({hits} hits, {false_hits} false)"
    )
    refused = [
        (a, b) for (s, label), (a, b, _) in zip(scores, pairs, strict=True) if label and not s
    ]
    print(f"\nparaphrases the guard refused ({len(refused)}):")
    for a, b in refused:
        print(f"  {a!r} / {b!r}")
    print("\nnear misses closest to the threshold:")
    for score, a, b in sorted(
        ((s, a, b) for (s, label), (a, b, _) in zip(scores, pairs, strict=True) if not label),
        reverse=True,
    )[:5]:
        print(f"  {score:.3f}  {a!r} / {b!r}")


if __name__ == "__main__":
    main()
