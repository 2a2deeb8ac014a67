"""Insults and abuse, from alt-profanity-check's bundled linear model (no download).

The model scores offensiveness, not intent: "this fucking code doesn't work" scores as high as
"you are worthless". Measured on data/eval.jsonl, blocking on the score alone blocked frustrated
and self-deprecating messages, so a high score only blocks when the text addresses someone
("you", "your", ...) other than in a request to the assistant ("can you explain", "thank
you"); otherwise it flags. Thresholds come from settings or the admin.

Scoring computes what the library's `predict_prob` computes (a TF-IDF vector, five calibrated
linear SVMs, the mean of their sigmoid-calibrated probabilities) with one sparse product
instead of scikit-learn's per-call validation: about 0.4 ms instead of 5 ms per window, which
counted in the worker that streams every answer. The fused form is checked against the
library on probe texts when it is built and is not used if they differ.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from django.conf import settings

from moderation.checks import Check
from moderation.normalize import normalize
from moderation.types import ALLOW, Action, Direction, Verdict

_ADDRESSED = re.compile(r"\b(?:you|your|youre|you're|yourself|u|ur|ya|thou)\b")
# "You" in a request to the assistant ("can you explain", "thank you") addresses it for help,
# not for abuse: "this fucking api is awful, can you explain the params" swears at software.
# Nor does the "you" of anyone in a how-question ("is this how you make schnitzel", "how do you
# cook it"): it means "one".
_REQUEST_YOU = re.compile(
    r"\b(?:(?:can|could|would|will) (?:you|u) (?:please |pls |plz )?(?:explain|tell|help|show"
    r"|give|write|check|fix|describe|recommend|suggest|list|summari[sz]e|translate|clarify|walk me"
    r"|look at)|thank (?:you|u)|do (?:you|u) know"
    r"|how (?:do |would |should |can |could )?(?:you|u) (?:\w{1,30} )?(?:make|cook|prepare|bake"
    r"|fry|cut|clean|fix|use|spell|pronounce|play))\b"
)
_PROBES = (
    "you are a worthless idiot",
    "this fucking code does not work",
    "thank you, that was helpful",
    "kill the process and restart the server",
    "",
)

logger = logging.getLogger(__name__)


def fused_scorer(vectorizer: Any, model: Any) -> Callable[[str], float] | None:
    """The library model as one sparse product, or None if its form is not the expected one
    (a binary CalibratedClassifierCV of linear models with sigmoid calibration)."""
    import numpy as np

    try:
        parts = model.calibrated_classifiers_
        if model.method != "sigmoid" or list(model.classes_) != [0, 1]:
            return None
        weights = np.vstack([part.estimator.coef_.ravel() for part in parts]).T  # (V, k)
        intercepts = np.array([float(part.estimator.intercept_[0]) for part in parts])
        slopes = np.array([float(part.calibrators[0].a_) for part in parts])
        offsets = np.array([float(part.calibrators[0].b_) for part in parts])
    except (AttributeError, IndexError, TypeError, ValueError):
        return None

    def score(text: str) -> float:
        decision = np.asarray(vectorizer.transform([text]) @ weights).ravel() + intercepts
        return float(np.mean(1.0 / (1.0 + np.exp(slopes * decision + offsets))))

    return score


def library_scorer() -> Callable[[str], float]:
    # Imported here: loading scikit-learn and the model takes about two seconds.
    from profanity_check import profanity_check

    def library(text: str) -> float:
        return float(profanity_check.predict_prob([text])[0])

    fused = fused_scorer(profanity_check.vectorizer, profanity_check.model)
    if fused is not None and _agrees(fused, library, _PROBES):
        return fused
    logger.warning("toxicity: the library model has an unexpected form; using predict_prob")
    return library


def _agrees(
    fused: Callable[[str], float], library: Callable[[str], float], texts: Sequence[str]
) -> bool:
    return all(abs(fused(text) - library(text)) < 1e-9 for text in texts)


class ToxicityCheck(Check):
    name: ClassVar[str] = "toxicity"

    def __init__(self, *, threshold: float | None = None) -> None:
        super().__init__(threshold=threshold)
        self._score = library_scorer()
        self.block_threshold = (
            threshold if threshold is not None else settings.MODERATION_TOXICITY_BLOCK_THRESHOLD
        )
        self.flag_threshold = settings.MODERATION_TOXICITY_FLAG_THRESHOLD

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        normalized = normalize(text)
        if not normalized:
            return ALLOW
        score = self._score(normalized)
        if score >= self.block_threshold and _ADDRESSED.search(_REQUEST_YOU.sub(" ", normalized)):
            return Verdict(
                Action.BLOCK,
                categories=("harassment",),
                score=score,
                reason=f"abusive language aimed at someone (score {score:.2f})",
            )
        if score >= self.flag_threshold:
            return Verdict(
                Action.FLAG,
                categories=("harassment",),
                score=score,
                reason=f"offensive language (score {score:.2f})",
            )
        return ALLOW
