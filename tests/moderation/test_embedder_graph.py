"""MiniLM as one traced graph (`MODERATION_SEMANTIC_GRAPH`): the same vectors as the model run
op by op, for every length and batch size, and the model op by op wherever the graph cannot
be trusted."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from django.test import override_settings

from moderation.checks import embedders
from moderation.checks.embedders import MAX_TOKENS, MiniLMEncoder

# Lengths from the shortest ("" is [CLS] [SEP]) past the truncation, other than the trace's.
TEXTS = [
    "",
    "ok",
    "How do I reset my router to factory settings?",
    "Écris un poème sur la mer la nuit, avec des rimes.",
    "word " * (MAX_TOKENS * 2),
    "Write a limerick about a forgetful robot who lost its keys in the rain.",
    "kill",
]


@pytest.fixture(scope="module")
def encoders() -> tuple[MiniLMEncoder, MiniLMEncoder]:
    """(op by op, graph), both in float32."""
    with override_settings(MODERATION_SEMANTIC_BF16="off", MODERATION_SEMANTIC_GRAPH=False):
        op_by_op = MiniLMEncoder()
    with override_settings(MODERATION_SEMANTIC_BF16="off", MODERATION_SEMANTIC_GRAPH=True):
        graph = MiniLMEncoder()
    return op_by_op, graph


@pytest.mark.parametrize("batch", [1, 2, len(TEXTS)])
def test_the_graph_gives_the_vectors_of_the_model_run_op_by_op(encoders, batch: int) -> None:
    op_by_op, graph = encoders
    assert (op_by_op.graph, graph.graph) == (False, True)
    for start in range(0, len(TEXTS), batch):
        texts = TEXTS[start : start + batch]
        # Straight to the forward pass: `encode` could join the texts with other calls.
        expected = np.stack(op_by_op._encode_batch(texts))
        got = np.stack(graph._encode_batch(texts))
        assert got.shape == (len(texts), 384)
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_model_that_cannot_be_traced_runs_op_by_op(encoders, monkeypatch, caplog) -> None:
    _, graph = encoders

    def untraceable(*args, **kwargs):
        raise RuntimeError("no tracing here")

    monkeypatch.setattr(torch.jit, "trace", untraceable)
    with caplog.at_level(logging.WARNING, logger="moderation.checks.embedders"):
        assert embedders._traced(torch, graph._pooled, graph._tokenizer) is None
    assert "could not be traced" in caplog.text


def test_a_graph_whose_vectors_are_off_is_not_used(encoders, monkeypatch, caplog) -> None:
    _, graph = encoders
    # No cosine reaches this: every traced graph counts as off.
    monkeypatch.setattr(embedders, "_TRACE_MIN_COSINE", 1.5)
    with caplog.at_level(logging.WARNING, logger="moderation.checks.embedders"):
        assert embedders._traced(torch, graph._pooled, graph._tokenizer) is None
    assert "graph is off" in caplog.text
    monkeypatch.setattr(embedders, "_TRACE_MIN_COSINE", 0.9999)
    assert embedders._traced(torch, graph._pooled, graph._tokenizer) is not None
