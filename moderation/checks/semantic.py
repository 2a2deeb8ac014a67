"""Harmful requests and statements recognised by meaning, not by wording: sentence-embedding
models (`MODERATION_SEMANTIC_MODELS`: the English all-MiniLM-L6-v2 and the multilingual
multilingual-e5-small, each shipped inside a PyPI package, no download; `embedders.py`) and, for
each, a logistic regression trained on labelled seed phrases (`data/semantic_seeds.txt`); the
text's score is the average of their probabilities. Two models of different training and
languages err on different texts: averaged, they held better on unseen sets than either alone.

Why: keyword patterns catch the phrasings they were written for; "I've made up my mind,
tonight is the night I end everything" shares no keyword with them. The embedding places it
near the self-harm seeds and away from the hard negatives ("kill the process", "I'm so tired I
could die"), which are seeds of the `benign` class.

Cost: the model and the classifier are built once per process, at the first check (a few
seconds: loading torch and the model, embedding the seeds), under a lock, and shared by every
instance and thread. Texts are cut into segments of about `SEGMENT_CHARS` characters at sentence
ends, because mean-pooled embeddings of long texts dilute a single harmful sentence; the
segments are embedded in one batch and the text is judged by its worst segment.

Bounded work: the model's cost grows with the number of segments, so one hostile message of
32,000 characters (125 segments of "_" or "word word ...") took 4 to 13 s of CPU. Each distinct
segment is embedded once (a run without spaces is cut into fixed-size chunks, so a repeated
character or pattern collapses to a few distinct ones), and at most `MAX_SEGMENTS` per text:
about 7,500 characters of distinct prose are always judged in full. Past that, the segments
kept are those holding the clause whose words are most typical of the harmful seeds rather
than the benign ones (`harm_vocabulary`, a naive-Bayes word score): filler without such words
(repeated, random or punctuation padding, however long) cannot push a harmful sentence out of
what is judged. Filler of distinct, harm-like prose can: buried at a random place in 30,000
characters of the evaluation set's benign, flagged and PII sentences, 112 of its 155 harmful
examples were kept (36 by chance). The word-list, pattern and toxicity checks read the whole
text either way.

The decision: block when the worst segment's probability of not being benign is at least the
threshold (`MODERATION_SEMANTIC_THRESHOLD`, or the admin's "Check settings"); the category is
that segment's most likely harmful class.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from django.conf import settings

from moderation.checks import Check, CheckError
from moderation.checks.embedders import E5, MINILM, Embedder, get_embedder
from moderation.code_prose import code_as_prose
from moderation.framing import unframe
from moderation.normalize import normalize
from moderation.types import ALLOW, Action, Direction, Verdict

logger = logging.getLogger(__name__)

SEEDS_FILE = Path(__file__).resolve().parent.parent / "data" / "semantic_seeds.txt"
BENIGN = "benign"
# The classes of the seed file's sections (tests/moderation/test_semantic.py holds it to them).
SEED_CLASSES = frozenset(
    {
        "benign",
        "cybercrime",
        "harassment",
        "hate",
        "illicit",
        "illicit/violent",
        "privacy",
        "self-harm",
        "sexual",
        "sexual/minors",
        "violence",
        "violence/graphic",
    }
)
# About one sentence or a streamed window (~200 characters); 40-60 tokens for the model.
SEGMENT_CHARS = 240
# At most this many distinct segments are embedded per text (see the module docstring): 15-30
# ms each on one core, so at most about a second, against 13 s for 32,000 characters before.
MAX_SEGMENTS = 32
# Segments of each other view of the text judged besides those: without its framing
# (moderation/framing.py), and its code read as prose (moderation/code_prose.py).
VIEW_SEGMENTS = 8
# A text of at most `SHORT_WORDS` words ("dank je wel", "mach weiter bitte") is judged on
# almost nothing: its embedding says more about its language than its meaning, and harmless
# ones scored 0.8-0.98 in the blind sets while the harmful ones of the evaluation sets scored
# 0.88-1.0 (docs/moderation.md, "Seventeenth session"). It is blocked only at
# `SHORT_THRESHOLD`, or the check's threshold if that is higher; the word-list, pattern and
# toxicity checks still read it as any text.
SHORT_WORDS = 3
SHORT_THRESHOLD = 0.95
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
_CLAUSE_END = re.compile(r"(?<=[.!?;:,])\s+")
_WORD = re.compile(r"\w+")
_LETTER = re.compile(r"[^\W\d_]")


def load_seeds(path: Path = SEEDS_FILE) -> list[tuple[str, str]]:
    """(text, category) pairs from the seed file: "[category]" starts a section; "#" lines and
    blank lines are skipped."""
    seeds: list[tuple[str, str]] = []
    category: str | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            category = line[1:-1].strip()
            continue
        if category is None:
            raise ValueError(f"{path}:{number}: example before any [category] line")
        seeds.append((line, category))
    return seeds


# Development sets: labelled traffic this project has measured on and read (docs/moderation.md),
# trained on next to the seeds when MODERATION_SEMANTIC_DEV_SETS is on. The blind sets written
# after these (eval_blind_i.jsonl on) are not: they measure what the training is worth.
DEV_SETS = (
    "eval.jsonl",
    "eval_holdout.jsonl",
    "eval_holdout2.jsonl",
    "eval_holdout3.jsonl",
    "eval_holdout4.jsonl",
    "eval_holdout5.jsonl",
    "eval_blind_a.jsonl",
    "eval_blind_b.jsonl",
    "eval_blind_c.jsonl",
    "eval_blind_d.jsonl",
    "eval_blind_e.jsonl",
    "eval_blind_f.jsonl",
    "eval_blind_g.jsonl",
    "eval_blind_h.jsonl",
)
# The sets' categories (OpenAI's taxonomy, and the older sets' names) as the seeds' classes.
_SEED_CLASS = {
    "harassment/threatening": "harassment",
    "hate/threatening": "hate",
    "self-harm/intent": "self-harm",
    "self-harm/instructions": "self-harm",
    "self_harm": "self-harm",
    "sexual_minors": "sexual/minors",
    "weapons": "illicit/violent",
    "drugs": "illicit",
}


def load_dev_sets(directory: Path = SEEDS_FILE.parent) -> list[tuple[str, str]]:
    """(text, class) pairs from the development sets: a "block" line under its category's seed
    class, every other line ("allow", "flag", "redact") as benign. A "redact" line is read as
    the pipeline's prose checks read it, its personal data replaced by the label's word, so
    that "my tax ID is 12 345 678 901, is that right?" is learnt as the harmless text it is."""
    from moderation.checks.pii import PiiCheck
    from moderation.pipeline import labelled_spans

    pii = PiiCheck()
    examples: list[tuple[str, str]] = []
    for name in DEV_SETS:
        for number, line in enumerate((directory / name).read_text().splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            text, label, category = row["text"], row["label"], row["category"]
            if label == "redact":
                text = labelled_spans(text, pii.find(text))
            if label != "block":
                examples.append((text, BENIGN))
            elif (seed_class := _SEED_CLASS.get(category, category)) in SEED_CLASSES:
                examples.append((text, seed_class))
            else:
                raise ValueError(f"{name}:{number}: no seed class for category {category!r}")
    return examples


def training_examples() -> list[tuple[str, str]]:
    """What the classifier learns from: the seeds, and the development sets when
    MODERATION_SEMANTIC_DEV_SETS is on."""
    seeds = load_seeds()
    return seeds + load_dev_sets() if settings.MODERATION_SEMANTIC_DEV_SETS else seeds


def segments(text: str, *, size: int = SEGMENT_CHARS) -> list[str]:
    """`text` cut into pieces of at most about `size` characters, at sentence ends where
    possible, else at spaces; sentences without a letter, and repeated ones, left out; never an
    empty piece."""
    pieces: list[str] = []
    current = ""
    seen: set[str] = set()
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        # A sentence without a letter (a list number "(1)", "...", "5000.") says nothing, and
        # joined to its neighbour it moves that sentence's embedding: "Write a limerick about a
        # forgetful robot. (1)" scored as harassment, without "(1)" it did not.
        if not _LETTER.search(sentence):
            continue
        # Nor does a sentence said again: one harmless sentence pasted four times over read as
        # harassment (a segment of repeated text), and a harmful one is judged all the same.
        if sentence in seen:
            continue
        seen.add(sentence)
        # Cut by index, not by re-slicing the rest: a 32,000-character sentence is copied once.
        start = 0
        while len(sentence) - start > size:
            cut = sentence.rfind(" ", start + size // 2, start + size)
            cut = cut if cut > 0 else start + size
            pieces.append(sentence[start:cut].strip())
            start = cut
            while start < len(sentence) and sentence[start].isspace():
                start += 1
        sentence = sentence[start:]
        if not sentence:
            continue
        if current and len(current) + 1 + len(sentence) > size:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        pieces.append(current)
    return [p for p in pieces if p]


def judged_segments(normalized: str) -> list[str]:
    """The segments of `normalized` that the model embeds: each distinct one with a letter
    once, in order of first appearance, and at most `MAX_SEGMENTS`; past that, the most
    harm-like ones (highest `harm_likeness`, the earliest first among equals), in text order."""
    # A segment without a letter ("_", "...", "?") says nothing to judge; the model's guess
    # about one is noise.
    pieces = [p for p in dict.fromkeys(segments(normalized)) if _LETTER.search(p)]
    if len(pieces) <= MAX_SEGMENTS:
        return pieces
    vocabulary = harm_vocabulary()
    ranked = sorted(range(len(pieces)), key=lambda i: -harm_likeness(pieces[i], vocabulary))
    return [pieces[i] for i in sorted(ranked[:MAX_SEGMENTS])]


def harm_likeness(piece: str, vocabulary: dict[str, float]) -> float:
    """The score of the most harm-like clause of `piece`: the sum of its distinct words'
    weights. Per clause, so that benign sentences packed into the same segment do not dilute
    a harmful one."""
    return max(
        sum(vocabulary.get(word, 0.0) for word in set(_WORD.findall(clause)))
        for clause in _CLAUSE_END.split(piece)
    )


@lru_cache(maxsize=1)
def harm_vocabulary() -> dict[str, float]:
    """Words of the seed phrases, weighted by the log ratio of how often they occur in harmful
    and in benign seeds (add-one smoothed): positive for "want", "until", "myself", negative
    for "process", "code"; 0 for words in no seed. Needs no model: it only chooses which
    segments the model sees when there are too many."""
    harmful: Counter[str] = Counter()
    benign: Counter[str] = Counter()
    n_harmful = n_benign = 0
    for text, category in load_seeds():
        words = set(_WORD.findall(normalize(text)))
        if category == BENIGN:
            benign.update(words)
            n_benign += 1
        else:
            harmful.update(words)
            n_harmful += 1
    return {
        word: math.log(
            ((harmful[word] + 1) / (n_harmful + 2)) / ((benign[word] + 1) / (n_benign + 2))
        )
        for word in harmful.keys() | benign.keys()
    }


@dataclass(frozen=True)
class Member:
    """One embedding model and the logistic regression trained on its embeddings of the seeds."""

    encoder: Embedder
    model: Any  # sklearn.linear_model.LogisticRegression


@dataclass(frozen=True)
class Classifier:
    """Seed-trained logistic regressions, one per embedding model, whose probabilities are
    averaged; `classes` includes "benign"."""

    members: tuple[Member, ...]
    classes: tuple[str, ...]

    def scores(self, texts: list[str], *, threshold: float | None = None) -> np.ndarray:
        """Probabilities, one row per text, one column per class (`classes` order). Rows that
        `PREFETCHED` holds for this context are used as they are; the rest are computed (see
        `compute` for `threshold`)."""
        known = PREFETCHED.get()
        if isinstance(known, Pending):
            known = known.rows()
        if not known:
            return self.compute(texts, threshold=threshold)
        missing = [text for text in dict.fromkeys(texts) if text not in known]
        computed = (
            dict(zip(missing, self.compute(missing, threshold=threshold), strict=True))
            if missing
            else {}
        )
        return np.stack([known[text] if text in known else computed[text] for text in texts])

    def compute(self, texts: list[str], *, threshold: float | None = None) -> np.ndarray:
        """The members' probabilities, averaged with each text's `weights`. With a
        `threshold`, a text whose harm (1 - P(benign)) after the members so far is too low to
        reach it even if every later member said 1.0 is not given to the later members (the
        slower e5 runs only on texts MiniLM does not clear: with two equal members and 0.7,
        on those with MiniLM harm >= 0.4). Such a text's row is the average so far: below the
        threshold either way, so no decision changes. A member of weight 0 for a text does
        not read it."""
        benign = self.classes.index(BENIGN)
        weights = self.weights(texts)
        total = np.zeros((len(texts), len(self.classes)))
        used = np.zeros(len(texts))  # the weight of the members that read each text so far
        open_rows = np.arange(len(texts))
        for done, member in enumerate(self.members):
            reading = open_rows[weights[open_rows, done] > 0]
            if len(reading):
                vectors = member.encoder.encode([texts[i] for i in reading])
                probabilities = np.asarray(member.model.predict_proba(vectors))
                total[reading] += weights[reading, done, None] * probabilities
                used[reading] += weights[reading, done]
            if threshold is None or done + 1 == len(self.members):
                continue
            # Harm weighed so far, plus the full weight of the members still to come, against
            # the threshold.
            harm_so_far = used[open_rows] - total[open_rows, benign]
            to_come = weights[open_rows, done + 1 :].sum(axis=1)
            open_rows = open_rows[harm_so_far + to_come >= threshold]
        return total / np.maximum(used, 1e-12)[:, None]

    def weights(self, texts: list[str]) -> np.ndarray:
        """Each member's weight for each text (rows sum to 1): equal, except that a member
        written for a few languages (MiniLM: English) weighs `MODERATION_SEMANTIC_FOREIGN_
        WEIGHT` times as much as the others on a text confidently in another language. Its
        English word pieces read Romanian or Dutch as noise: "cum fac o bomba ... sa arunc
        in aer masina" scored 0.30 there and 1.00 in the multilingual model (blind set O)."""
        raw = np.ones((len(texts), len(self.members)))
        partial = {
            column: languages
            for column, member in enumerate(self.members)
            if (languages := getattr(member.encoder, "languages", None)) is not None
        }
        factor = float(settings.MODERATION_SEMANTIC_FOREIGN_WEIGHT)
        if partial and factor != 1.0 and len(partial) < len(self.members):
            from moderation.language import detect

            for row, text in enumerate(texts):
                language = detect(text).language
                if not language:
                    continue
                for column, languages in partial.items():
                    if language not in languages:
                        raw[row, column] = factor
        return raw / raw.sum(axis=1, keepdims=True)


def seed_vectors(encoder: Embedder, texts: list[str]) -> np.ndarray:
    """The embeddings of the seed texts, read from `MODERATION_SEMANTIC_CACHE_DIR` when a
    process already computed them for this model and these exact texts (the file name holds a
    hash of both), else computed (~30 s for multilingual-e5-small on this machine) and written
    there. Every web and worker process, and every server a test starts, would otherwise pay
    that at start. A cache that cannot be read or written is skipped."""
    # A model run in another precision gives (slightly) other vectors: its own file.
    precision = getattr(encoder, "precision", "fp32")
    key = [encoder.name, *texts] if precision == "fp32" else [encoder.name, precision, *texts]
    digest = hashlib.sha256("\n".join(key).encode()).hexdigest()[:24]
    directory = settings.MODERATION_SEMANTIC_CACHE_DIR
    path = Path(directory) / f"seeds-{encoder.name}-{digest}.npy" if directory else None
    if path is not None:
        with contextlib.suppress(OSError, ValueError):
            cached = np.load(path, allow_pickle=False)
            if cached.shape[0] == len(texts):
                return cached
    vectors = np.concatenate([encoder.encode(texts[i : i + 32]) for i in range(0, len(texts), 32)])
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written whole, then renamed: a process reading at the same time sees all or none.
            partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
            np.save(partial, vectors, allow_pickle=False)
            os.replace(partial, path)
        except OSError:
            logger.warning("moderation: could not cache seed embeddings in %s", directory)
    return vectors


def train(encoders: list[Embedder], seeds: list[tuple[str, str]]) -> Classifier:
    """One regression per encoder on the normalised seeds, with that model's C."""
    from sklearn.linear_model import LogisticRegression

    # Without their framing ("pretend you are…", "hypothetically", "for my novel"): the
    # development sets wrap many harmful requests in one, and a classifier that learnt the
    # wrapper as harmful blocked "pretend you are a pirate and tell me a joke". The check judges
    # a text both as written and unframed, so what it learns is the request itself. (Learning
    # each text both framed and bare was tried: set J, 11 false blocks and 10 missed against 9
    # and 8.)
    normalized = [normalize(text) for text, _ in seeds]
    texts = [unframe(text) or text for text in normalized]
    labels = [category for _, category in seeds]
    # A text with code is also learnt as the check also reads it, its code as prose
    # (`plan_ambush(target_address)` -> "plan ambush target address"): the same class.
    for (text, category), written in zip(seeds, normalized, strict=True):
        coded = normalize(code_as_prose(text))
        if coded != written:
            texts.append(unframe(coded) or coded)
            labels.append(category)
    members = []
    for encoder in encoders:
        vectors = seed_vectors(encoder, texts)
        # Balanced weights: the benign class has more seeds than any harmful one. C: vectors
        # are unit length, so the default C=1 regularises too hard to separate close
        # paraphrases; e5's vectors lie closer together than MiniLM's and need a larger one.
        model = LogisticRegression(
            C=SEMANTIC_C[encoder.name], class_weight="balanced", max_iter=3000
        )
        model.fit(vectors, labels)
        members.append(Member(encoder, model))
    classes = tuple(str(c) for c in members[0].model.classes_)
    return Classifier(tuple(members), classes)


class Pending:
    """Scores still being computed ahead (`moderation.prefetch`), in one batch or several (a
    request that carries several texts): the check that needs them waits, and computes its own
    for what failed or took longer than `PENDING_WAIT_SECONDS` in all."""

    def __init__(self, *futures: concurrent.futures.Future[dict[str, np.ndarray]]) -> None:
        self._futures = futures

    def rows(self) -> dict[str, np.ndarray]:
        # Never wait on an event loop's thread: the scores are delivered through that loop.
        on_loop = _running_loop() is not None
        deadline = time.monotonic() + (0 if on_loop else PENDING_WAIT_SECONDS)
        rows: dict[str, np.ndarray] = {}
        for future in self._futures:
            with contextlib.suppress(Exception):  # not ready, failed or cancelled: computed
                rows.update(future.result(timeout=max(0.0, deadline - time.monotonic())) or {})
        return rows


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


PENDING_WAIT_SECONDS = 10.0

# Scores computed ahead for the texts about to be checked in this context (see `prefetch`):
# segment text -> probabilities row, or those rows still being computed.
PREFETCHED: ContextVar[dict[str, np.ndarray] | Pending | None] = ContextVar(
    "semantic_prefetched", default=None
)


def prefetch(texts: list[str]) -> dict[str, np.ndarray]:
    """The scores of every segment of `texts`, computed in one batch, for `PREFETCHED`.

    The web process checks each `chat.send` on one thread, one message after the other; the
    embedding is most of that work (about 14 ms of 28 for a short message). A burst of sends
    is embedded together ahead of that thread instead: one batch of 16 short texts costs about
    72 ms, against 16 x 13.5 ms one by one. Empty when the check would not run on input."""
    check = _input_check()
    if not texts or check is None:
        return {}
    pieces = list(dict.fromkeys(piece for text in texts for piece in judged_pieces(text)))
    if not pieces:
        return {}
    rows = get_classifier().compute(pieces, threshold=check.threshold)
    return dict(zip(pieces, rows, strict=True))


def _input_check() -> SemanticCheck | None:
    """The configured semantic check that judges input, if any."""
    from moderation import registry, state

    try:
        snapshot = state.snapshot()
    except state.StateUnavailable:
        return None
    for configured in registry.configured_checks(snapshot):
        check = configured.check
        if isinstance(check, SemanticCheck) and Direction.INPUT in check.directions:
            return check
    return None


# Regularisation per embedding model, chosen on the older evaluation sets and blind sets A
# and B together (docs/moderation.md).
SEMANTIC_C = {MINILM: 30.0, E5: 1000.0}
_classifier: Classifier | None = None
_load_lock = threading.Lock()


def get_classifier() -> Classifier:
    """The process's classifier, built at the first call (thread-safe, once)."""
    global _classifier
    if _classifier is None:
        with _load_lock:
            if _classifier is None:
                names = list(settings.MODERATION_SEMANTIC_MODELS)
                _classifier = train([get_embedder(name) for name in names], training_examples())
    return _classifier


def judged_pieces(text: str) -> list[str]:
    """Every segment the check embeds for `text`: those of the text as written, then at most
    `VIEW_SEGMENTS` more of each other view (a framing is a preamble around one request, and
    code worth reading as prose is a few lines)."""
    normalized = normalize(text)
    pieces = judged_segments(normalized)
    for view in other_views(text, normalized):
        extra = [p for p in judged_segments(view) if p not in pieces]
        pieces = [*pieces, *extra[:VIEW_SEGMENTS]]
    return pieces


def other_views(text: str, normalized: str) -> list[str]:
    """The other readings of `text` (normalised: `normalized`) the check judges, besides the
    text as written: without its framing (role-play, "for a friend", "for my novel", a
    jailbreak preamble: a framing neither hides nor makes a request), its code read as prose
    (`plan_ambush(target_address)`, a JSON value), and that without its framing."""
    views = [unframe(normalized)]
    coded = normalize(code_as_prose(text))
    if coded != normalized:  # most texts have no code: their framing is read once
        views += [coded, unframe(coded)]
    return [view for view in dict.fromkeys(views) if view != normalized]


class SemanticCheck(Check):
    """Blocks texts whose meaning is close to the harmful seed phrases (see module docstring)."""

    name: ClassVar[str] = "semantic"
    lowered_by_intent: ClassVar[bool] = True
    reads_code_comments: ClassVar[bool] = True
    default_threshold: ClassVar[float | None] = 0.7

    def __init__(self, *, threshold: float | None = None) -> None:
        super().__init__(
            threshold=threshold if threshold is not None else settings.MODERATION_SEMANTIC_THRESHOLD
        )
        self.directions = frozenset(Direction(d) for d in settings.MODERATION_SEMANTIC_DIRECTIONS)
        self.classifier = get_classifier()

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        if direction not in self.directions:
            return ALLOW
        pieces = judged_pieces(text)
        if not pieces:
            return ALLOW
        assert self.threshold is not None
        threshold = self.threshold
        if max(len(_WORD.findall(piece)) for piece in pieces) <= SHORT_WORDS:
            threshold = max(threshold, SHORT_THRESHOLD)
        try:
            probabilities = self.classifier.scores(pieces, threshold=threshold)
        except Exception as exc:  # torch/tokenizer errors: let the failure policy decide
            raise CheckError(f"semantic model failed: {type(exc).__name__}: {exc}") from exc
        classes = self.classifier.classes
        benign = classes.index(BENIGN)
        # Harm = 1 - P(benign): a text between two harmful classes ("slit my wrists" is part
        # self-harm, part violence) is still plainly harmful.
        harm = 1.0 - probabilities[:, benign]
        worst = int(np.argmax(harm))
        score = float(harm[worst])
        if score < threshold:
            return ALLOW
        row = probabilities[worst].copy()
        row[benign] = -1.0
        category = classes[int(np.argmax(row))]
        return Verdict(
            Action.BLOCK,
            categories=(category,),
            score=score,
            reason=f"semantic classifier: {category} ({score:.2f})",
            matched=pieces[worst][:500],
        )
