"""How the candidate libraries were chosen: PII detection and profanity, measured side by side.

    .venv/bin/python bench/moderation_candidates.py

Candidates that are not installed are skipped (presidio is not a dependency: install
`presidio-analyzer` into a scratch environment to repeat its row). Uses both evaluation sets:
PII found on the "pii" examples, false positives on all others, µs per call.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "moderation" / "data"
SHORT = "Can you explain how to kill a zombie process in Linux, please?"
LONG = (
    "The quick brown fox jumps over the lazy dog while engineers call (415) 555-2671 or mail "
    "a@example.com about order 2024. " * 30
)[:2000]


def _examples() -> list[dict[str, str]]:
    lines = (DATA / "eval.jsonl").read_text().splitlines()
    lines += (DATA / "eval_holdout.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _us(func: Callable[[str], object], text: str, repeat: int = 50) -> float:
    func(text)
    started = time.perf_counter()
    for _ in range(repeat):
        func(text)
    return (time.perf_counter() - started) / repeat * 1e6


def _row(name: str, hit: Callable[[str], bool], positives: list[str], negatives: list[str]) -> None:
    found = sum(1 for t in positives if hit(t))
    wrong = sum(1 for t in negatives if hit(t))
    print(
        f"| {name} | {found}/{len(positives)} | {wrong}/{len(negatives)} | "
        f"{_us(hit, SHORT):,.0f} | {_us(hit, LONG):,.0f} |"
    )


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    examples = _examples()
    pii = [e["text"] for e in examples if e["category"] == "pii"]
    not_pii = [e["text"] for e in examples if e["category"] != "pii"]
    print("PII: | candidate | found | false positives | µs short | µs 2,000 chars |")
    print("| --- | --- | --- | --- | --- |")
    from moderation.checks.pii import PiiCheck

    ours = PiiCheck()
    _row("regex + Luhn + phonenumbers (chosen)", lambda t: bool(ours.find(t)), pii, not_pii)
    try:
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            PhoneRecognizer,
        )

        recognizers = [EmailRecognizer(), CreditCardRecognizer(), PhoneRecognizer()]

        def presidio(text: str) -> bool:
            return any(
                r.score >= 0.4
                for rec in recognizers
                for r in rec.analyze(text, entities=rec.supported_entities, nlp_artifacts=None)
                or []
            )

        _row("presidio pattern recognisers", presidio, pii, not_pii)
    except ImportError:
        print("| presidio pattern recognisers | not installed | | | |")

    abusive = [e["text"] for e in examples if e["category"] == "harassment"]
    benign = [e["text"] for e in examples if e["category"] == "benign"]
    print("\nInsults: | candidate | harassment caught | benign hit | µs short | µs 2,000 chars |")
    print("| --- | --- | --- | --- | --- |")
    try:
        from glin_profanity import Filter

        glin = Filter(
            {"languages": ["english"], "detect_leetspeak": True, "obfuscation": "standard"}
        )
        _row("glin-profanity", lambda t: glin.is_profane(t), abusive, benign)
    except ImportError:
        print("| glin-profanity | not installed | | | |")
    try:
        from profanity_check import predict_prob

        _row("alt-profanity-check >= 0.9", lambda t: predict_prob([t])[0] >= 0.9, abusive, benign)
    except ImportError:
        print("| alt-profanity-check | not installed | | | |")


if __name__ == "__main__":
    main()
