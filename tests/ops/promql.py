"""PromQL of the shipped dashboard and alerts, read with a real parser: which metrics it selects, which labels it keeps."""

from __future__ import annotations

import re

import promql_parser as promql

# Grafana's interval variables stand where PromQL wants a duration; any valid one does for parsing.
GRAFANA_INTERVALS = re.compile(r"\$__(rate_interval|interval|range)\b")
# A dashboard variable in a Grafana query: `$name` or `${name}`.
GRAFANA_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def parse(expression: str) -> promql.Expr:
    """Parse ``expression`` (Grafana's interval variables allowed); a syntax error raises ``ValueError``."""
    return promql.parse(GRAFANA_INTERVALS.sub("5m", expression))


def selectors(expression: str) -> list[promql.VectorSelector]:
    found: list[promql.VectorSelector] = []
    promql.walk(parse(expression), pre_visit=lambda node: found.append(node) if isinstance(node, promql.VectorSelector) else None)
    return found


def metric_names(expression: str) -> set[str]:
    """Every metric name ``expression`` selects; a selector without a name (``{__name__=~...}``) is refused."""
    names = set()
    for selector in selectors(expression):
        assert selector.name, f"a selector without a metric name cannot be checked: {selector} in {expression}"
        names.add(selector.name)
    return names


def output_labels(expression: str) -> set[str] | None:
    """The labels the result's series carry, or None when the expression keeps every label of what it selects."""
    return _labels(parse(expression))


def _labels(node: promql.Expr) -> set[str] | None:
    if isinstance(node, promql.AggregateExpr):
        modifier = node.modifier
        if modifier is None:
            return set()
        return set(modifier.labels) if modifier.type == promql.AggModifierType.By else None
    if isinstance(node, promql.BinaryExpr):
        # Against a scalar the vector side's labels stay; between vectors, one-to-one, the left side's.
        return _labels(node.rhs) if isinstance(node.lhs, promql.NumberLiteral) else _labels(node.lhs)
    if isinstance(node, promql.Call):
        vectors = [arg for arg in node.args if not isinstance(arg, (promql.NumberLiteral, promql.StringLiteral))]
        if not vectors:
            return set()  # vector(0), time()
        labels = _labels(vectors[0])
        return labels - {"le"} if labels is not None and node.func.name == "histogram_quantile" else labels
    if isinstance(node, promql.ParenExpr):
        return _labels(node.expr)
    if isinstance(node, promql.MatrixSelector):
        return _labels(node.vector_selector)
    if isinstance(node, promql.NumberLiteral):
        return set()
    return None
