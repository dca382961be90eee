"""The one scoring engine: scores a prediction against a gold item with a named metric.

`run_eval`, `optimize_domain`'s gate and the optimizers' metrics all score through `score_item`, so the
gate and the receipts measure the same thing. An expert names its metric in its declaration
(experts/registry.py); the registry refuses a name that is not in `METRICS`.

Example:
    >>> from types import SimpleNamespace
    >>> from sme_mcp.optimize.goldsets import GoldItem
    >>> item = GoldItem(id="s1", domain="science", question="Q?\\n\\nA) up\\nB) down", answer="B")
    >>> score_item("multiple_choice", item, SimpleNamespace(answer="B) down")).correct
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sme_mcp.optimize.goldsets import GoldItem
from sme_mcp.tools.markdown import strip_fences


@dataclass(frozen=True)
class ItemScore:
    correct: bool
    f1: float | None = None
    detail: str | None = None


def _answer(pred: Any) -> str:
    return str(getattr(pred, "answer", "") or "")


def _aliases(item: GoldItem) -> list[str]:
    return item.answers or ([item.answer] if item.answer else [])


def _route(item: GoldItem, pred: Any) -> ItemScore:
    got = str(getattr(pred, "domain", "") or "")
    return ItemScore(correct=got == item.label, detail=None if got == item.label else f"routed to {got!r}")


def _code_tests(item: GoldItem, pred: Any) -> ItemScore:
    from sme_mcp.optimize import metrics

    code = strip_fences(str(getattr(pred, "code", "") or ""))
    if not code:
        return ItemScore(correct=False, detail="no code")
    ok, detail = metrics.code_passes(code, item.tests, item.setup)
    return ItemScore(correct=ok, detail=None if ok else detail[:500])


def _sympy(item: GoldItem, pred: Any) -> ItemScore:
    from sme_mcp.optimize import metrics

    ok = metrics.math_equivalent(_answer(pred), item.answer or "")
    return ItemScore(correct=ok, detail=None if ok else f"expected {item.answer!r}")


def _exact_f1(item: GoldItem, pred: Any) -> ItemScore:
    from sme_mcp.optimize import metrics

    answer, aliases = _answer(pred), _aliases(item)
    ok = metrics.exact_match(answer, aliases)
    return ItemScore(correct=ok, f1=metrics.token_f1(answer, aliases),
                     detail=None if ok else f"expected one of {aliases[:5]}")


def _token_f1(item: GoldItem, pred: Any) -> ItemScore:
    from sme_mcp.optimize import metrics

    aliases = _aliases(item)
    f1 = metrics.token_f1(_answer(pred), aliases)
    return ItemScore(correct=f1 >= 0.5, f1=f1, detail=None if f1 >= 0.5 else f"F1 {f1:.2f} against {aliases[:3]}")


def _numeric(item: GoldItem, pred: Any) -> ItemScore:
    from sme_mcp.optimize.answer_metrics import numbers_equal

    ok = numbers_equal(_answer(pred), item.answer or "")
    return ItemScore(correct=ok, detail=None if ok else f"expected {item.answer!r}")


def _multiple_choice(item: GoldItem, pred: Any) -> ItemScore:
    from sme_mcp.optimize.answer_metrics import choice_letter, options_of

    got = choice_letter(_answer(pred), options_of(item.question))
    want = (item.answer or "").strip().upper()
    return ItemScore(correct=got == want, detail=None if got == want else
                     f"expected {want}, the answer chose {got or 'no single option'}")


def _time_of_day(item: GoldItem, pred: Any) -> ItemScore:
    from sme_mcp.optimize.answer_metrics import time_of_day

    got, want = time_of_day(_answer(pred)), time_of_day(item.answer or "")
    return ItemScore(correct=got is not None and got == want,
                     detail=None if got is not None and got == want else f"expected {want}, got {got or 'no time'}")


METRICS: dict[str, Callable[[GoldItem, Any], ItemScore]] = {
    "route": _route,                      # the router: the chosen expert equals the label
    "code_tests": _code_tests,            # the code passes the item's asserts in the sandbox
    "sympy": _sympy,                      # SymPy-equivalent to the gold (numbers, expressions, root sets)
    "exact_f1": _exact_f1,                # normalized exact match with any alias; token F1 reported beside it
    "exact": _exact_f1,
    "token_f1": _token_f1,                # correct at token F1 >= 0.5 with the best alias
    "numeric": _numeric,                  # the answer's number equals the gold number (relative 1e-6)
    "multiple_choice": _multiple_choice,  # the option the answer chooses is the gold letter
    "time_of_day": _time_of_day,          # the first time of day in the answer equals the gold "HH:MM"
}
BUILTIN_METRICS = {"router": "route", "math": "sympy", "code": "code_tests", "general": "exact_f1"}


def score_item(metric: str, item: GoldItem, pred: Any) -> ItemScore:
    """Checks a prediction (anything with `answer`, `code` or `domain` attributes) against `item`.

    Args:
        metric: A name in `METRICS`, or a built-in gold set's name (which stands for its metric).
        item: The gold item.
        pred: The prediction.

    Raises:
        KeyError: An unknown metric (the registry refuses those when an expert is declared).
    """
    return METRICS[BUILTIN_METRICS.get(metric, metric)](item, pred)


def dspy_metric(metric: str):
    """A DSPy metric `(example, prediction, trace=None) -> float` for optimizers and Evaluate."""

    def score(example: Any, pred: Any, trace: Any = None) -> float:
        return float(score_item(metric, example.gold, pred).correct)

    score.__name__ = f"{metric}_metric"
    return score
