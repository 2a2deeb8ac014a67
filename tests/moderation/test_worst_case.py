"""Hostile inputs: long runs of one character class, many short lines, deep nesting, mixed
scripts, up to the 32,000 characters a message may have. Each check must still give a sane
answer, and the work it hands to regex engines, the word-list library and the embedding model
must stay bounded. Work is measured as counts and sizes, never as time: the machines that run
the tests are shared and noisy.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moderation import normalize as normalize_module
from moderation.checks import profanity, semantic
from moderation.checks.patterns import PatternCheck
from moderation.checks.profanity import ProfanityCheck
from moderation.framing import unframe
from moderation.normalize import normalize
from moderation.types import Action, Direction

INPUT = Direction.INPUT
MAX_CHARS = 32_000  # settings.CHAT_MAX_CONTENT_CHARS

CLASSES = {
    "underscore": "_",
    "digits": "0123456789",
    "letters": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "punctuation": ".,;:!?-*@$|€()[]{}<>/\\'\"#%&+=~^`",
    "whitespace": " \t\n\r\u00a0\u2003",
    "emoji": "\U0001f600\U0001f4a9\U0001f52a\u2764\ufe0f\U0001f1fa\U0001f1f8",
    "combining": "\u0300\u0301\u0302\u0308\u0327\u0336",
    "zero-width": "\u200b\u200c\u200d\u2060\ufeff\u00ad",
    # Latin, Cyrillic, Greek, Han, Arabic digits, Hebrew, Devanagari.
    "scripts": (
        "a\u0431\u0432\u0433\u03b1\u03b2\u03b3\u4e2d\u6587\u5b57\u0661\u0662\u0663"
        "\u05d0\u05d1\u05d2\u0905\u0906\u0915"
    ),
}

EXAMPLES = settings(
    max_examples=25,
    deadline=None,  # time is not what is measured here
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def hostile_texts(draw: st.DrawFn, max_chars: int = MAX_CHARS) -> str:
    """A run of one character class (one character repeated or a random mix), many short
    lines, deeply nested brackets, or a mix of all of them; at most `max_chars` long."""
    kind = draw(st.sampled_from(["run", "repeat", "lines", "nesting", "mix"]))
    length = draw(st.integers(1, max_chars))
    rng = random.Random(draw(st.integers(0, 2**32)))
    chars = CLASSES[draw(st.sampled_from(sorted(CLASSES)))]
    if kind == "run":
        return "".join(rng.choices(chars, k=length))
    if kind == "repeat":
        return rng.choice(chars) * length
    if kind == "lines":
        line = "".join(rng.choices(chars, k=rng.randint(1, 4))) + "\n"
        return (line * (length // len(line) + 1))[:length]
    if kind == "nesting":
        depth = length // 2
        return rng.choice(["(", "[", "{", "<"]) * depth + rng.choice([")", "]", "}", ">"]) * depth
    pieces: list[str] = []
    size = 0
    while size < length:
        piece = "".join(rng.choices(CLASSES[rng.choice(sorted(CLASSES))], k=rng.randint(1, 2000)))
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces)[:length]


def padded(text: str, padding: str) -> str:
    """`text` in the middle of `padding`, within the message size limit."""
    room = (MAX_CHARS - len(text) - 2) // 2
    return f"{padding[:room]} {text} {padding[:room]}"


# --- normalize ----------------------------------------------------------------------------

# The token rule normalize used until it was found quadratic on long runs without letters.
_ORIGINAL_LEET_TOKEN = re.compile(r"[\w@$!|€]*[a-z][\w@$!|€]*|[\w@$!|€]+(?=[a-z])")


@EXAMPLES
@given(text=hostile_texts())
def test_normalize_of_hostile_text_is_bounded_and_free_of_invisible_characters(
    text: str,
) -> None:
    seen = normalize(text)
    # NFKC can expand a character (a ligature) into a few; never more than 18 (U+FDFA).
    assert len(seen) <= 18 * len(text)
    assert not any(ch in seen for ch in "\u200b\u200c\u200d\u2060\ufeff\u00ad")
    assert "  " not in seen and seen == seen.strip()


def counting_sub(monkeypatch: pytest.MonkeyPatch, name: str) -> tuple[list[int], list[int]]:
    """Replace `normalize_module.<name>` (a compiled pattern used through `sub`) with one that
    records the length of each string it is run over and of each match it hands on."""
    calls: list[int] = []
    handed: list[int] = []
    original = getattr(normalize_module, name)

    class Counting:
        def sub(self, repl: Callable[[re.Match[str]], str], string: str) -> str:
            calls.append(len(string))

            def counted(match: re.Match[str]) -> str:
                handed.append(len(match.group(0)))
                return repl(match)

            return original.sub(counted, string)

    monkeypatch.setattr(normalize_module, name, Counting())
    return calls, handed


@EXAMPLES
@given(text=hostile_texts())
def test_normalize_runs_the_leetspeak_rule_once_and_shows_it_each_character_once(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls, handed = counting_sub(monkeypatch, "_LEET_TOKEN")
    normalize.__wrapped__(text)
    assert len(calls) == 1
    # Each match is one whole run, tried once: the tokens handed on never overlap.
    assert sum(handed) <= calls[0]


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(
        alphabet="ab1z0_!@$|€ .-*\nÄé\u4e2d\u0661\u0430ß\u200b\u0301\U0001f600K", max_size=16
    )
)
def test_normalize_maps_leetspeak_as_the_original_rule_did(text: str) -> None:
    def deleet(match: re.Match[str]) -> str:
        token = match.group(0)
        if not normalize_module._HAS_LEET.search(token):
            return token
        # Since the thirteenth session a number with its unit ("14yo") is left as written.
        if normalize_module._NUMBER_WITH_UNIT.fullmatch(token):
            return token
        stripped = token.rstrip("!")
        return stripped.translate(normalize_module._LEET) + token[len(stripped) :]

    folded = text.casefold()
    expected = _ORIGINAL_LEET_TOKEN.sub(deleet, folded)
    assert normalize_module._LEET_TOKEN.sub(normalize_module._deleet, folded) == expected


# --- patterns -----------------------------------------------------------------------------


@dataclass
class RegexSpy:
    """Stands in for an RE2 program and records the length of every text handed to it."""

    regex: Any
    lengths: list[int] = field(default_factory=list)

    def finditer(self, text: str) -> Iterator[Any]:
        self.lengths.append(len(text))
        return self.regex.finditer(text)

    def search(self, text: str) -> Any:
        self.lengths.append(len(text))
        return self.regex.search(text)


@pytest.fixture(scope="module")
def patterns() -> PatternCheck:
    return PatternCheck()


def test_every_built_in_pattern_runs_on_the_linear_time_engine(patterns: PatternCheck) -> None:
    import re2

    assert patterns.groups
    for group in patterns.groups:
        assert isinstance(group.regex, re2._Regexp)
        assert group.exceptions is None or isinstance(group.exceptions, re2._Regexp)


@EXAMPLES
@given(text=hostile_texts())
def test_patterns_scan_a_hostile_text_once_per_group(patterns: PatternCheck, text: str) -> None:
    spies = [(RegexSpy(g.regex), RegexSpy(g.exceptions)) for g in patterns.groups]
    check = PatternCheck.__new__(PatternCheck)
    check.groups = [
        dataclasses.replace(g, regex=regex, exceptions=exceptions if g.exceptions else None)
        for g, (regex, exceptions) in zip(patterns.groups, spies, strict=True)
    ]
    verdict = check.evaluate(text, direction=INPUT)
    size = len(normalize(text))
    for regex, exceptions in spies:
        assert regex.lengths in ([], [size])
        # Exceptions only see what their group matched, which lies within the text.
        assert sum(exceptions.lengths) <= size
    assert verdict.action in (Action.ALLOW, Action.BLOCK)


@EXAMPLES
@given(padding=hostile_texts(max_chars=MAX_CHARS - 40))
def test_patterns_still_block_a_threat_hidden_in_hostile_padding(
    patterns: PatternCheck, padding: str
) -> None:
    verdict = patterns.evaluate(padded("I am going to kill you.", padding), direction=INPUT)
    assert verdict.action is Action.BLOCK
    assert "violence" in verdict.categories


# --- profanity ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def profanity_check() -> ProfanityCheck:
    return ProfanityCheck()


class FilterSpy:
    """Wraps the word-list library's filter and records every text handed to it."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped
        self.texts: list[str] = []

    def check_profanity(self, text: str) -> Any:
        self.texts.append(text)
        return self.wrapped.check_profanity(text)


@EXAMPLES
@given(text=hostile_texts())
def test_the_word_list_library_gets_short_pieces_without_long_runs(
    profanity_check: ProfanityCheck, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = FilterSpy(profanity_check._filter)
    monkeypatch.setattr(profanity_check, "_filter", spy)
    verdict = profanity_check.evaluate(text, direction=INPUT)
    size = len(normalize(text))
    assert all(len(piece) <= profanity.PIECE_CHARS for piece in spy.texts)
    assert all(
        len(run) <= profanity.MAX_RUN_CHARS
        for piece in spy.texts
        for run in re.findall(r"\w+|[^\w\s]+", piece)
    )
    # Pieces advance by at least a quarter of their size; cut runs gain one space per 64.
    assert len(spy.texts) <= size // (profanity.PIECE_CHARS // 4) + 2
    assert sum(map(len, spy.texts)) <= 2 * size + 2 * size // profanity.MAX_RUN_CHARS + 1
    assert verdict.action in (Action.ALLOW, Action.FLAG)


@EXAMPLES
@given(padding=hostile_texts(max_chars=MAX_CHARS - 40))
def test_profanity_is_still_found_in_hostile_padding(
    profanity_check: ProfanityCheck, padding: str
) -> None:
    verdict = profanity_check.evaluate(padded("well, fuck this.", padding), direction=INPUT)
    assert verdict.action is Action.FLAG
    assert "fuck" in verdict.reason


def test_a_short_message_reaches_the_library_whole() -> None:
    text = "what the f*ck is this, you sh1t"
    assert list(profanity.library_pieces(normalize(text))) == [normalize(text)]


def test_long_text_is_cut_into_overlapping_pieces_that_cover_all_of_it() -> None:
    words = [f"w{i}" for i in range(4000)]
    pieces = list(profanity.library_pieces(" ".join(words)))
    assert len(pieces) > 1
    covered = {word for piece in pieces for word in piece.split()}
    assert covered == set(words)
    for before, after in itertools.pairwise(pieces):
        shared = set(before.split()) & set(after.split())
        assert sum(len(w) + 1 for w in shared) >= profanity.OVERLAP_CHARS


# --- semantic -----------------------------------------------------------------------------

HARMFUL = "i want to hurt everyone at my school until they stop"


# A segment cut may fall inside a long sentence (at a space), so the stand-in judges by one word.
_HARMFUL_WORD = re.compile(r"\bhurt\b")


class RecordingClassifier:
    """Scores a segment harmful when it has the word "hurt"; records every batch it scores."""

    classes = ("benign", "violence")

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def scores(self, texts: list[str], *, threshold: float | None = None) -> np.ndarray:
        self.batches.append(texts)
        return np.array([[0.05, 0.95] if _HARMFUL_WORD.search(t) else [0.95, 0.05] for t in texts])


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> RecordingClassifier:
    classifier = RecordingClassifier()
    monkeypatch.setattr(semantic, "get_classifier", lambda: classifier)
    return classifier


@EXAMPLES
@given(text=hostile_texts())
def test_the_model_embeds_a_bounded_number_of_distinct_short_segments(
    recording: RecordingClassifier, text: str
) -> None:
    recording.batches.clear()
    verdict = semantic.SemanticCheck().evaluate(text, direction=INPUT)
    assert len(recording.batches) <= 1
    embedded = recording.batches[0] if recording.batches else []
    # The text's segments, and a few more for the same text without its framing.
    assert len(embedded) <= semantic.MAX_SEGMENTS + 3 * semantic.VIEW_SEGMENTS
    assert len(set(embedded)) == len(embedded)
    assert all(0 < len(piece) <= semantic.SEGMENT_CHARS for piece in embedded)
    assert verdict.action is Action.ALLOW


def _distinct_sentences(count: int, seed: int) -> str:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return " ".join(
        " ".join("".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(12)) + "."
        for _ in range(count)
    )


@EXAMPLES
@given(
    padding=st.one_of(
        hostile_texts(max_chars=MAX_CHARS - 80),
        st.integers(0, 2**32).map(lambda seed: _distinct_sentences(600, seed)),
    )
)
def test_a_harmful_sentence_is_judged_wherever_hostile_padding_puts_it(
    recording: RecordingClassifier, padding: str
) -> None:
    verdict = semantic.SemanticCheck().evaluate(padded(HARMFUL + ".", padding), direction=INPUT)
    assert verdict.action is Action.BLOCK
    assert len(recording.batches[-1]) <= semantic.MAX_SEGMENTS + 3 * semantic.VIEW_SEGMENTS


def test_repeated_segments_are_embedded_once() -> None:
    assert semantic.judged_segments(normalize("word " * 6000)) == [("word " * 48).strip()]
    # Segments without a letter are not judged at all: nothing in them has a meaning.
    assert semantic.judged_segments(normalize("_" * 30_000)) == []


def test_past_the_bound_the_most_harm_like_segments_are_kept_in_text_order() -> None:
    filler = _distinct_sentences(200, seed=7)
    text = normalize(f"{filler} {HARMFUL}. {filler[::-1]}")
    pieces = list(dict.fromkeys(semantic.segments(text)))
    assert len(pieces) > semantic.MAX_SEGMENTS
    kept = semantic.judged_segments(text)
    assert len(kept) == semantic.MAX_SEGMENTS
    assert any(HARMFUL in piece for piece in kept)
    assert kept == [p for p in pieces if p in kept]


def test_harm_vocabulary_weighs_harmful_words_over_benign_ones() -> None:
    vocabulary = semantic.harm_vocabulary()
    assert vocabulary["want"] > 0 > vocabulary["process"]
    assert semantic.harm_likeness("i want to hurt them", vocabulary) > semantic.harm_likeness(
        "restart the process", vocabulary
    )


# --- normalize: obfuscation undone, with bounded work ------------------------------------

WORDS = ("kill", "bomb", "poison", "choke", "stalk", "phishing")
HOMOGLYPHS = dict(zip("aeopci", "\u0430\u0435\u043e\u0440\u0441\u0456", strict=True))
# Characters that change nothing on screen. (A right-to-left override does: the letters after
# it are shown reversed, and normalize reads them as shown; tests/moderation/test_normalize.py.)
INVISIBLE = ("\u200b", "\u200d", "\u2060", "\u202d", "\ufeff", "\U000e0020")


@st.composite
def obfuscated(draw: st.DrawFn) -> tuple[str, str]:
    """A word from WORDS written with one or more of the tricks normalize undoes."""
    word = draw(st.sampled_from(WORDS))
    letters = list(word)
    if draw(st.booleans()):
        letters = [HOMOGLYPHS.get(c, c) if draw(st.booleans()) else c for c in letters]
    if draw(st.booleans()):
        letters = [c + draw(st.sampled_from(INVISIBLE)) for c in letters]
    if draw(st.booleans()):
        i = draw(st.integers(0, len(letters) - 1))
        letters[i] = letters[i] * draw(st.integers(3, 12))
        text = "".join(letters)
    elif draw(st.booleans()):
        text = draw(st.sampled_from([" ", ".", "-", "*", "_"])).join(letters)
    else:
        text = "".join(letters)
    return word, f"how to {text} now"


@settings(max_examples=200, deadline=None)
@given(case=obfuscated())
def test_normalize_recovers_an_obfuscated_word(case: tuple[str, str]) -> None:
    word, text = case
    assert word in normalize(text).split()


class CountingWords(frozenset[str]):
    """The vocabulary, counting lookups."""

    lookups = 0

    def __contains__(self, item: object) -> bool:
        CountingWords.lookups += 1
        return super().__contains__(item)


@st.composite
def spaced_or_stretched(draw: st.DrawFn) -> str:
    """Long runs of what the spacing and stretching rules work on: single letters with
    separators, words with held letters, and mixes of both, up to the size limit."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    length = draw(st.integers(1, MAX_CHARS))
    kind = draw(st.sampled_from(["spaced", "gapped", "stretched", "mixed"]))
    pieces: list[str] = []
    size = 0
    while size < length:
        if kind == "spaced" or (kind == "mixed" and rng.random() < 0.5):
            piece = rng.choice(" .-*_").join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=30))
        elif kind == "gapped":
            piece = "  ".join(" ".join(rng.choices("kilmybos", k=4)) for _ in range(10))
        else:
            piece = "".join(c * rng.randint(1, 6) for c in rng.choices("deakil", k=8))
        pieces.append(piece)
        size += len(piece) + 1
    return " ".join(pieces)[:length]


@EXAMPLES
@given(text=st.one_of(spaced_or_stretched(), hostile_texts()))
def test_normalize_looks_up_a_bounded_number_of_words_per_character(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = CountingWords(normalize_module.vocabulary())
    monkeypatch.setattr(normalize_module, "vocabulary", lambda: words)
    CountingWords.lookups = 0
    seen = normalize.__wrapped__(text)
    # Segmentation: at most _WORD_MAX lookups per spaced letter, plus two per merged piece;
    # un-stretching: at most 2**_STRETCH_MAX_RUNS per word.
    per_char = normalize_module._WORD_MAX + 2 + 2**normalize_module._STRETCH_MAX_RUNS
    assert CountingWords.lookups <= per_char * len(text)
    # Emoji become words of at most 11 characters; nothing else grows past NFKC's 18.
    assert len(seen) <= 18 * len(text)


def test_a_spaced_run_longer_than_the_limit_is_joined_without_a_search() -> None:
    run = " ".join("kill" * 20)  # 80 letters
    assert normalize(run) == "kill" * 20


def test_segment_tries_each_end_at_most_word_max_starts() -> None:
    words = CountingWords({"kill", "my", "boss"})
    CountingWords.lookups = 0
    assert normalize_module.segment("killmyboss", words) == "kill my boss"
    assert CountingWords.lookups <= 10 * normalize_module._WORD_MAX + 20


@EXAMPLES
@given(
    text=st.one_of(
        hostile_texts(),
        st.integers(1, 3000).map(lambda n: "pretend you are " * n),
        st.integers(1, 3000).map(lambda n: "for my novel " * n),
    )
)
def test_unframe_only_takes_text_away(text: str) -> None:
    seen = normalize(text)
    assert len(unframe(seen)) <= len(seen)


@EXAMPLES
@given(text=hostile_texts())
def test_normalize_reads_each_word_for_look_alikes_at_most_once(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look-alike rule (`_unconfuse`) goes over the text once: one pass of the word
    pattern, each word handed on once."""
    calls, handed = counting_sub(monkeypatch, "_WORD_RUN")
    normalize.__wrapped__(text + " k\u0456ll \u0432\u0441\u0435\u0433\u043e")
    assert len(calls) == 1
    assert sum(handed) <= calls[0]
