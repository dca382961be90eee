"""Scores one prediction against one gold item, per gold set, with the real checks in `metrics`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sme_mcp.optimize.goldsets import GoldItem
from sme_mcp.tools.markdown import strip_fences


@dataclass(frozen=True)
class ItemScore:
    correct: bool
    f1: float | None = None
    detail: str | None = None


def score_item(goldset: str, item: GoldItem, pred: Any) -> ItemScore:
    """Checks a prediction (anything with `answer`, `code` or `domain` attributes) against `item`."""
    from sme_mcp.optimize import metrics

    if goldset == "router":
        got = str(getattr(pred, "domain", "") or "")
        return ItemScore(correct=got == item.label, detail=None if got == item.label else f"routed to {got!r}")
    if goldset == "code":
        code = strip_fences(str(getattr(pred, "code", "") or ""))
        if not code:
            return ItemScore(correct=False, detail="no code")
        ok, detail = metrics.code_passes(code, item.tests, item.setup)
        return ItemScore(correct=ok, detail=None if ok else detail[:500])
    answer = str(getattr(pred, "answer", "") or "")
    if goldset == "math":
        ok = metrics.math_equivalent(answer, item.answer or "")
        return ItemScore(correct=ok, detail=None if ok else f"expected {item.answer!r}")
    aliases = item.answers or ([item.answer] if item.answer else [])
    ok = metrics.exact_match(answer, aliases)
    detail = None if ok else f"expected one of {aliases[:5]}"
    return ItemScore(correct=ok, f1=metrics.token_f1(answer, aliases), detail=detail)


def dspy_metric(goldset: str):
    """A DSPy metric `(example, prediction, trace=None) -> float` for optimizers and Evaluate."""

    def metric(example: Any, pred: Any, trace: Any = None) -> float:
        return float(score_item(goldset, example.gold, pred).correct)

    metric.__name__ = f"{goldset}_metric"
    return metric
