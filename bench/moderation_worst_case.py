"""Time of each moderation check on hostile texts (long runs of one character class, many
segments, deep nesting) and on normal text.

    .venv/bin/python bench/moderation_worst_case.py [--only underscores,digits] [--repeat 1]

Calls each configured check's `evaluate(text, direction=INPUT)` directly, after
`pipeline.warm()`, with an empty admin state (no database). The normalisation cache is cleared
before every call, so each check pays for normalising its text, as the first check of a
pipeline run does. Prints one row per text, one column per check, in milliseconds (the best of
`--repeat` runs).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MAX_CHARS = 32_000  # settings.CHAT_MAX_CONTENT_CHARS
MIXED_SCRIPTS = "abc\u0430\u0431\u0432\u03b1\u03b2\u03b3\u4e2d\u6587\u5b57\u0661\u0662\u0663"


def _random_words(count: int, seed: int = 0) -> str:
    # Distinct gibberish words: no two segments alike, so nothing can be deduplicated.
    rng = random.Random(seed)
    return " ".join(
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(count)
    )


def _benign_prose() -> str:
    # The evaluation set's benign examples, as one long message of ordinary sentences.
    lines = (ROOT / "moderation" / "data" / "eval.jsonl").read_text().splitlines()
    examples = [json.loads(line) for line in lines if line.strip()]
    return " ".join(e["text"].rstrip(".!?") + "." for e in examples if e["label"] == "allow")


def texts() -> dict[str, str]:
    prose = _benign_prose()
    return {
        "normal (60 chars)": "Can you explain how to kill a zombie process in Linux, please?",
        f"normal prose ({min(len(prose), 4000)} chars)": prose[:4000],
        "underscores x30000": "_" * 30_000,
        "digits x16000": "1" * 16_000,
        "digits x32000": "1" * MAX_CHARS,
        "letters x30000": "a" * 30_000,
        "ab x16000": "ab" * 16_000,
        "'word ' x6000": "word " * 6_000,
        "punctuation x32000": ".!?-*" * 6_400,
        "spaces+x x32000": " x" * 16_000,
        "emoji x16000": "\U0001f600" * 16_000,
        "combining x32000": "a" + "\u0301" * (MAX_CHARS - 1),
        "zero-width x32000": "a\u200b" * 16_000,
        "short lines x16000": "hi\n" * 10_666,
        "nested brackets": "(" * 16_000 + ")" * 16_000,
        "random words 32000": _random_words(5_400)[:MAX_CHARS],
        "digits+letter": "1" * 31_999 + "m",
        # Latin, Cyrillic, Greek, Han and Arabic digits.
        "mixed scripts": (MIXED_SCRIPTS * 2_000)[:MAX_CHARS],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated prefixes of text names")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from moderation import normalize, pipeline, registry, state
    from moderation.types import Direction

    pipeline.warm()
    checks = registry.configured_checks(state.EMPTY)
    names = [c.name for c in checks]
    print("| text | chars | " + " | ".join(names) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in names) + " |")
    wanted = [p for p in args.only.split(",") if p]
    errors: dict[str, str] = {}
    for label, text in texts().items():
        if wanted and not any(label.startswith(p) for p in wanted):
            continue
        cells = []
        for configured in checks:
            best = float("inf")
            for _ in range(args.repeat):
                normalize.normalize.cache_clear()
                started = time.perf_counter()
                try:
                    configured.check.evaluate(text, direction=Direction.INPUT)
                except Exception as exc:  # a check's failure is a result here, not a crash
                    errors.setdefault(configured.name, f"{type(exc).__name__}: {exc}")
                best = min(best, time.perf_counter() - started)
            cells.append(f"{best * 1000:.1f}")
        print(f"| {label} | {len(text)} | " + " | ".join(cells) + " |", flush=True)
    for name, error in errors.items():
        # E.g. the rules check without a database: timed all the same, up to its failure.
        print(f"\n{name} failed (timed up to the failure): {error}")


if __name__ == "__main__":
    main()
