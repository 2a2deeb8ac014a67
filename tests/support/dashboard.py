"""The committed Prometheus config and Grafana dashboard (`deploy/`), read as the tests that
check them need: the dashboard's PromQL queries, and what each query reads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

# PromQL's words that are not metric names (functions, aggregations, modifiers).
_PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "irate", "increase",
    "histogram_quantile", "le", "on", "ignoring", "group_left", "group_right", "offset",
}  # fmt: skip
_AGGREGATION = re.compile(
    r"\b(?:sum|max|min|avg|count) by \(([^)]*)\) \(\s*(?:rate\()?([a-zA-Z_:][\w:]*)"
)


def dashboard_queries() -> list[str]:
    """Every panel's PromQL query, as written (Grafana's `$__rate_interval` unfilled)."""
    dashboard = json.loads((DEPLOY / "grafana/dashboards/chat.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def runnable(query: str) -> str:
    """A dashboard query as Prometheus can run it: `$__rate_interval` filled as Grafana would
    for a 15 s scrape (four intervals)."""
    return query.replace("$__rate_interval", "1m")


def metric_names(query: str) -> set[str]:
    """The metric names a query reads: its words outside brackets, labels and PromQL's own."""
    words = re.findall(r"[a-zA-Z_:][\w:]*", re.sub(r"\[[^\]]*\]|\{[^}]*\}", "", query))
    grouped = {label for labels, _ in _AGGREGATION.findall(query) for label in labels.split(",")}
    return {
        word
        for word in words
        if word not in _PROMQL_WORDS and word not in {g.strip() for g in grouped}
    }


def grouped_labels(query: str) -> dict[str, set[str]]:
    """For each `agg by (labels) (metric…)` of a query: metric -> the labels it groups by."""
    found: dict[str, set[str]] = {}
    for labels, metric in _AGGREGATION.findall(query):
        found.setdefault(metric, set()).update(label.strip() for label in labels.split(","))
    return found


def scrape_config() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text()))
