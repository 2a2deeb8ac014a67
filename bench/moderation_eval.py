"""Precision and recall of input blocking on a labelled set (`moderation/data/eval*.jsonl`).

    .venv/bin/python bench/moderation_eval.py [--checks pii,patterns,profanity,toxicity] [-v]
    .venv/bin/python bench/moderation_eval.py --file moderation/data/eval_holdout.jsonl
    .venv/bin/python bench/moderation_eval.py --output moderation/data/output_benign_answers.jsonl

Runs the built-in checks as shipped (no admin rules, no allowlist, no database). The semantic
check learns from the development sets (`semantic.DEV_SETS`); measured on one of them, it is
trained without that one, so every figure is on a set its classifier has not seen. A positive is
an example labelled "block"; per category, recall is over examples labelled with it, and
precision over blocks the pipeline attributed to it. "redact" and "flag" examples must not be
blocked (they count as false positives when they are) and are reported on their own lines.

`--output FILE` measures output moderation instead: every answer of the file (lines with an
"answer", from bench/output_answers.py: the served model's answers to benign prompts) is
streamed through `OutputModerator` in 4-character deltas, as the worker does, and the share of
answers it stopped is the false-block rate (all the answers are benign).

Lines are {"text", "category", "label"}, optionally with "lang" (default "en") and "kind" (how
the example is written: "direct", "obfuscated", "roleplay", "benign_trap", ...). Sets with
those fields also get a table per language and one per kind. In those tables, and in the
per-category table, an "allow" line counts under its own category as a harmless text near that
topic: "false blocks" is how many of them were blocked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVAL_FILE = ROOT / "moderation" / "data" / "eval.jsonl"
# Labels of examples that must not be blocked, reported apart from the harmless "allow" ones.
NOT_BLOCKED = ("redact", "flag", "allow")


class Tally:
    """Counts for one row of a table: block examples caught or missed, others wrongly
    blocked, and blocks attributed to this row by the pipeline (for precision per category)."""

    def __init__(self) -> None:
        self.caught = self.missed = self.harmless = self.false_blocks = 0

    def add(self, *, label: str, blocked: bool) -> None:
        if label == "block":
            if blocked:
                self.caught += 1
            else:
                self.missed += 1
        else:
            self.harmless += 1
            self.false_blocks += blocked

    def row(self, name: str, *, wrongly_attributed: int | None = None) -> str:
        positives = self.caught + self.missed
        recall = f"{self.caught / positives:.2f}" if positives else "-"
        wrong = self.false_blocks if wrongly_attributed is None else wrongly_attributed
        blocks = self.caught + wrong
        precision = f"{self.caught / blocks:.2f}" if blocks else "-"
        allowed = (
            f"{(self.harmless - self.false_blocks) / self.harmless:.2f}" if self.harmless else "-"
        )
        return (
            f"| {name} | {positives} | {self.caught} | {self.missed} | {self.harmless} | "
            f"{self.false_blocks} | {precision} | {recall} | {allowed} |"
        )


HEADER = (
    "| {what} | to block | blocked | missed | not to block | false blocks | precision | recall "
    "| allowed |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", default="pii,patterns,profanity,toxicity")
    parser.add_argument("--file", type=Path, default=EVAL_FILE, help="a JSONL evaluation set")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every mistake")
    parser.add_argument(
        "--output", type=Path, help="measure output moderation's false blocks on these answers"
    )
    args = parser.parse_args()
    os.environ["MODERATION_CHECKS"] = args.checks
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.conf import settings

    from moderation import pipeline, state
    from moderation.checks import semantic
    from moderation.types import Action, Direction

    # No database: the rules check sees no admin rules instead of failing on every text.
    state.pin(state.EMPTY)
    if args.output:
        output_false_blocks(args.output, verbose=args.verbose)
        return
    if args.file.name in semantic.DEV_SETS:
        # The semantic check learns from the development sets: one measured is left out of
        # its training, so that its figure is that of a set never seen (leave one set out).
        semantic.DEV_SETS = tuple(name for name in semantic.DEV_SETS if name != args.file.name)
        print(f"the semantic check is trained without {args.file.name}\n")
    examples = [json.loads(line) for line in args.file.read_text().splitlines() if line.strip()]
    by_category: dict[str, Tally] = defaultdict(Tally)
    by_lang: dict[str, Tally] = defaultdict(Tally)
    by_kind: dict[str, Tally] = defaultdict(Tally)
    overall = Tally()
    # The languages the checks were written for: the target is about these; the others
    # get MODERATION_UNSUPPORTED_LANGUAGE_ACTION, and their figures are printed apart.
    supported_languages = tuple(settings.MODERATION_LANGUAGES)
    supported = Tally()
    # Blocks of texts not to be blocked, by the category the pipeline gave them.
    attributed: Counter[str] = Counter()
    actions: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    mistakes: list[tuple[str, dict[str, Any], Any]] = []
    started = time.perf_counter()
    for example in examples:
        outcome = pipeline.run(example["text"], direction=Direction.INPUT, snapshot=state.EMPTY)
        label, category = example["label"], example["category"]
        blocked = outcome.action is Action.BLOCK
        actions[(label, category)][outcome.action.value] += 1
        by_category[category].add(label=label, blocked=blocked)
        by_lang[example.get("lang", "en")].add(label=label, blocked=blocked)
        by_kind[example.get("kind", "-")].add(label=label, blocked=blocked)
        overall.add(label=label, blocked=blocked)
        if example.get("lang", "en") in supported_languages:
            supported.add(label=label, blocked=blocked)
        if label == "block" and not blocked:
            mistakes.append(("missed", example, outcome))
        elif label != "block" and blocked:
            for predicted in outcome.categories or ("?",):
                attributed[predicted] += 1
            mistakes.append(("false block", example, outcome))
        elif label != "block" and label != outcome.action.value:
            mistakes.append((f"expected {label}", example, outcome))
    elapsed = time.perf_counter() - started

    print(f"{len(examples)} examples, {elapsed / len(examples) * 1000:.1f} ms each\n")
    print("Precision per category counts the wrong blocks the pipeline put in that category.\n")
    print(HEADER.format(what="category"))
    for category in sorted(by_category):
        tally = by_category[category]
        print(tally.row(category, wrongly_attributed=attributed.get(category, 0)))
    print(overall.row("**overall**"))
    print(supported.row(f"**{', '.join(supported_languages)} only**"))
    for title, table in (("language", by_lang), ("kind", by_kind)):
        if len(table) > 1:
            print()
            print(HEADER.format(what=title))
            for name in sorted(table):
                print(table[name].row(name))
    print("\nNot to be blocked, by label and category:\n")
    print("| label | category | examples | blocked (false positives) | outcome counts |")
    print("| --- | --- | --- | --- | --- |")
    for (label, category), counts in sorted(actions.items()):
        if label not in NOT_BLOCKED:
            continue
        print(
            f"| {label} | {category} | {sum(counts.values())} | {counts.get('block', 0)} | "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + " |"
        )
    if args.verbose:
        print()
        for kind, example, outcome in mistakes:
            where = f"{example['category']}/{example.get('lang', 'en')}/{example.get('kind', '-')}"
            print(
                f"{kind:16} [{where}] {example['text']!r} -> {outcome.action.value}"
                f" {list(outcome.categories)} {[v.check for v in outcome.verdicts]}"
            )
    print()
    for name, tally in (("every language", overall), ("MODERATION_LANGUAGES", supported)):
        positives = tally.caught + tally.missed
        blocks = tally.caught + tally.false_blocks
        precision = tally.caught / blocks if blocks else 1.0
        recall = tally.caught / positives if positives else 1.0
        target = precision >= 0.95 and recall >= 0.9
        print(
            f"{name}: precision {precision:.3f}, recall {recall:.3f}; target precision >= 0.95"
            f" and recall >= 0.90: {'met' if target else 'NOT met'}"
        )


def output_false_blocks(path: Path, *, verbose: bool) -> None:
    """Stream each benign answer through the output moderator; print the share stopped."""
    from django.conf import settings

    from moderation import services, streaming

    # No database: what would be recorded as events is only counted.
    recorded: list[Any] = []
    services.events_record = lambda **kwargs: recorded.append(kwargs)  # type: ignore[assignment]
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    stopped: list[tuple[dict[str, Any], list[str]]] = []
    started = time.perf_counter()
    for row in rows:
        moderator = streaming.OutputModerator(user_id=None, conversation_id="", generation_id="")
        answer = row["answer"]
        for start in range(0, len(answer), 4):
            moderator.feed(answer[start : start + 4])
            if moderator.blocked:
                break
        if not moderator.blocked:
            moderator.finish()
        if moderator.blocked:
            stopped.append((row, moderator.categories))
    elapsed = time.perf_counter() - started
    rate = len(stopped) / len(rows) if rows else 0.0
    directions = ",".join(settings.MODERATION_SEMANTIC_DIRECTIONS)
    print(f"{len(rows)} benign answers, {elapsed / max(len(rows), 1) * 1000:.0f} ms each")
    print(f"checks: {settings.MODERATION_CHECKS}; semantic on: {directions}")
    print(f"stopped (false blocks): {len(stopped)} = {rate:.1%}; flagged events: {len(recorded)}")
    if verbose:
        for row, categories in stopped:
            print(f"  {categories} {row['prompt']!r}: {row['answer'][:200]!r}")
    print(f"target at most 1%: {'met' if rate <= 0.01 else 'NOT met'}")


if __name__ == "__main__":
    main()
