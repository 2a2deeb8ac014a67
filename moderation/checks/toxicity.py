"""Insults and abuse, from alt-profanity-check's bundled linear model (no download).

The model scores offensiveness, not intent: "this fucking code doesn't work" scores as high as
"you are worthless". Measured on data/eval.jsonl, blocking on the score alone blocked frustrated
and self-deprecating messages, so a high score only blocks when the text addresses someone
("you", "your", ...); otherwise it flags. Thresholds come from settings or the admin.
"""

from __future__ import annotations

import re
from typing import ClassVar

from django.conf import settings

from moderation.checks import Check
from moderation.normalize import normalize
from moderation.types import ALLOW, Action, Direction, Verdict

_ADDRESSED = re.compile(r"\b(?:you|your|youre|you're|yourself|u|ur|ya|thou)\b")


class ToxicityCheck(Check):
    name: ClassVar[str] = "toxicity"

    def __init__(self, *, threshold: float | None = None) -> None:
        super().__init__(threshold=threshold)
        # Imported here: loading scikit-learn and the model takes about two seconds.
        from profanity_check import predict_prob

        self._predict = predict_prob
        self.block_threshold = (
            threshold if threshold is not None else settings.MODERATION_TOXICITY_BLOCK_THRESHOLD
        )
        self.flag_threshold = settings.MODERATION_TOXICITY_FLAG_THRESHOLD

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        normalized = normalize(text)
        if not normalized:
            return ALLOW
        score = float(self._predict([normalized])[0])
        if score >= self.block_threshold and _ADDRESSED.search(normalized):
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
