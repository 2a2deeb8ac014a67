"""Input moderation started ahead of the consumer's shared thread, batched across messages.

The consumer stores a `chat.send` on Django's one thread for synchronous work, so a burst of
messages (many users pressing Enter at once) is checked one after the other, and the semantic
check's embedding is most of each check. `input_prefetched(text)` embeds the text on a pool
thread, together with every other message waiting at that moment, while the consumer goes on
with the work before the check; the check that runs in this context waits for those scores
(`semantic.PREFETCHED`). The first message of a burst starts at once (no waiting for company);
those arriving while it runs form the next batches, at most `BATCH_TEXTS` each, so that the
first of a burst are checked while the rest are still embedded (in bfloat16 a text costs about
the same alone as in a batch of 32, so a larger batch only makes its first message wait for its
last). Any failure here only means the check computes its own scores, as without a prefetch.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any

from config import batching

# The most texts embedded in one batch (bench/admission.py: a 32-send burst's median
# `chat.accepted` waits for the batch its message is in).
BATCH_TEXTS = 8


def text_batcher(compute: Any, *, batch_size: int = BATCH_TEXTS) -> batching.Batcher:
    """A batcher of texts for `compute` (`config.batching.Batcher`), each batch traced as
    `moderation.prefetch`."""
    return batching.Batcher(
        compute,
        batch_size=batch_size,
        span="moderation.prefetch",
        size_attribute="moderation.texts",
    )


def _semantic_prefetch(texts: list[str]) -> dict[str, Any]:
    from django.db import connection

    from moderation.checks import semantic

    try:
        return semantic.prefetch(texts)
    finally:
        connection.close()  # a pool thread: leave no connection behind (rules may be read)


_batchers: batching.PerLoop = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def input_prefetched(*texts: str) -> AsyncIterator[None]:
    """Within the block, the input checks of `texts` find their semantic scores: computed, or
    being computed, and then they wait for them (calls made from here through sync_to_async,
    or run in `contextvars.copy_context()`, carry this context to their thread). The block
    starts at once, so the work before the check (the limits, the conversation, the model)
    overlaps the embedding. Each text joins the batches as one message does."""
    from moderation.checks.semantic import PREFETCHED, Pending

    batcher = batching.for_running_loop(_batchers, lambda: text_batcher(_semantic_prefetch))
    token = PREFETCHED.set(Pending(*(batcher.submit(text) for text in texts)))
    try:
        yield
    finally:
        PREFETCHED.reset(token)
