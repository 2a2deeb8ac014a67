"""Two things sentence embeddings are blind to, checked on the words before a semantic hit.

Mean-pooled MiniLM vectors barely see word order or digits: "convert a string to an integer"
and "convert an integer to a string" score 0.996, "15 times 12" and "15 times 13" close to
it. On the labelled pairs (`inference/data/semantic_cache_pairs.jsonl`) no threshold alone
reached 0.99 precision with any hits (bench/cache_threshold.py). So a candidate must also:

- ask about the same numbers (the same multiset of digit runs),
- not be the other's content words in another order ("is Python faster than Java" / "is Java
  faster than Python"; this also refuses a paraphrase that only reorders, a lost hit), and
- not swap the two sides of a direction word ("X to Y", "X than Y", "from X", "X in Y"):
  a pair of words in one order around such a word in one question, reversed in the other.
"""

from __future__ import annotations

import re
from collections import Counter

WORD = re.compile(r"[^\W_]+", re.UNICODE)
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
DIRECTIONS = frozenset({"to", "into", "than", "from", "versus", "vs", "in", "per", "over", "onto"})
# Skipped when looking for the words on each side of a direction word.
FILLERS = frozenset({"a", "an", "the", "my", "your", "its", "one", "some", "this", "that"})
# Words that carry no subject of their own: left out when comparing the content words' order.
FUNCTION_WORDS = (
    FILLERS
    | DIRECTIONS
    | frozenset(
        [
            "what",
            "which",
            "who",
            "whom",
            "how",
            "why",
            "when",
            "where",
            "is",
            "are",
            "was",
            "were",
            "be",
            "do",
            "does",
            "did",
            "can",
            "could",
            "should",
            "would",
            "will",
            "i",
            "you",
            "we",
            "me",
            "it",
            "of",
            "for",
            "by",
            "with",
            "on",
            "at",
            "and",
            "or",
            "there",
            "here",
            "many",
            "much",
        ]
    )
)


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _words(text: str) -> list[str]:
    return [_stem(w) for w in WORD.findall(text.lower())]


def _directed_pairs(words: list[str]) -> set[tuple[str, str]]:
    pairs = set()
    for index, word in enumerate(words):
        if word not in DIRECTIONS:
            continue
        before = next((w for w in reversed(words[:index]) if w not in FILLERS), None)
        after = next((w for w in words[index + 1 :] if w not in FILLERS), None)
        if before and after and before not in DIRECTIONS and after not in DIRECTIONS:
            pairs.add((before, after))
    return pairs


def same_question(a: str, b: str) -> bool:
    """False when `a` and `b` ask about different numbers, reorder the same content words, or
    swap the sides of a direction."""
    if Counter(NUMBER.findall(a)) != Counter(NUMBER.findall(b)):
        return False
    words_a, words_b = _words(a), _words(b)
    content_a = [w for w in words_a if w not in FUNCTION_WORDS]
    content_b = [w for w in words_b if w not in FUNCTION_WORDS]
    if content_a != content_b and Counter(content_a) == Counter(content_b):
        return False
    pairs_a, pairs_b = _directed_pairs(words_a), _directed_pairs(words_b)
    return not any((right, left) in pairs_b for left, right in pairs_a if left != right)
