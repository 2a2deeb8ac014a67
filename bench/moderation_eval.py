"""Precision and recall of input blocking on the labelled set `moderation/data/eval.jsonl`.

    .venv/bin/python bench/moderation_eval.py [--checks pii,patterns,profanity,toxicity] [-v]
    .venv/bin/python bench/moderation_eval.py --file moderation/data/eval_holdout.jsonl

Runs the built-in checks as shipped (no admin rules, no allowlist, no database). A positive is
an example labelled "block"; per category, recall is over examples labelled with it, and
precision over blocks the pipeline attributed to it. "redact" and "flag" examples must not be
blocked (they count as false positives when they are) and are reported on their own lines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVAL_FILE = ROOT / "moderation" / "data" / "eval.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", default="pii,patterns,profanity,toxicity")
    parser.add_argument("--file", type=Path, default=EVAL_FILE, help="a JSONL evaluation set")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every mistake")
    args = parser.parse_args()
    os.environ["MODERATION_CHECKS"] = args.checks
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from moderation import pipeline, state
    from moderation.types import Action, Direction

    examples = [json.loads(line) for line in args.file.read_text().splitlines() if line.strip()]
    tp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    actions: dict[str, Counter[str]] = defaultdict(Counter)
    mistakes = []
    started = time.perf_counter()
    for example in examples:
        outcome = pipeline.run(example["text"], direction=Direction.INPUT, snapshot=state.EMPTY)
        label, category = example["label"], example["category"]
        actions[category][outcome.action.value] += 1
        blocked = outcome.action is Action.BLOCK
        if label == "block":
            if blocked:
                tp[category] += 1
            else:
                fn[category] += 1
                mistakes.append(("missed", example, outcome))
        elif blocked:
            for predicted in outcome.categories or ("?",):
                fp[predicted] += 1
            fp["__all__"] += 1
            mistakes.append(("false block", example, outcome))
        elif label != outcome.action.value:
            mistakes.append((f"expected {label}", example, outcome))
    elapsed = time.perf_counter() - started

    print(f"{len(examples)} examples, {elapsed / len(examples) * 1000:.1f} ms each\n")
    print("| category | examples | blocked correctly | missed | precision | recall |")
    print("| --- | --- | --- | --- | --- | --- |")
    for category in sorted(set(tp) | set(fn)):
        n = tp[category] + fn[category]
        # Precision per category: correct blocks of this category over all blocks attributed
        # to it, counting wrong blocks of benign texts that the pipeline put in this category.
        attributed = tp[category] + fp[category]
        precision = tp[category] / attributed if attributed else 1.0
        print(
            f"| {category} | {n} | {tp[category]} | {fn[category]} | {precision:.2f} | "
            f"{tp[category] / n:.2f} |"
        )
    total_tp, total_fn, total_fp = sum(tp.values()), sum(fn.values()), fp["__all__"]
    precision = total_tp / (total_tp + total_fp) if total_tp + total_fp else 1.0
    recall = total_tp / (total_tp + total_fn)
    print(
        f"| **overall** | {total_tp + total_fn} | {total_tp} | {total_fn} | "
        f"**{precision:.2f}** | **{recall:.2f}** |"
    )
    print("\nNot to be blocked:\n")
    print("| label | examples | blocked (false positives) | outcome counts |")
    print("| --- | --- | --- | --- |")
    for category in ("pii", "profanity", "benign"):
        counts = actions.get(category, Counter())
        print(
            f"| {category} | {sum(counts.values())} | {counts.get('block', 0)} | "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + " |"
        )
    if args.verbose:
        print()
        for kind, example, outcome in mistakes:
            print(
                f"{kind:16} [{example['category']}] {example['text']!r} -> {outcome.action.value}"
                f" {list(outcome.categories)} {[v.check for v in outcome.verdicts]}"
            )
    target = precision >= 0.9 and recall >= 0.85
    print(f"\ntarget precision >= 0.90 and recall >= 0.85: {'met' if target else 'NOT met'}")


if __name__ == "__main__":
    main()
