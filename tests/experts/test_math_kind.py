"""Symbolic questions go to the SymPy tools; word problems to chain of thought."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sme_mcp.experts.math_kind import is_symbolic

GOLDSETS = Path(__file__).resolve().parents[2] / "goldsets" / "math"


@pytest.mark.parametrize(
    "question",
    [
        "Find the indefinite integral of x*sin(3*x) with respect to x.",
        "What is d/dx of x**3*exp(x)?",
        "Compute lim_(x -> 0) sin(x)/x.",
        "Solve for x: x**2 - 5*x + 6 = 0",
        "Differentiate f(x) = 6*x/(3*x**2 + 2) with respect to x.",
        "Factor x^2 - 1",
        "What is the determinant of the matrix [[1, 2], [3, 4]]?",
        "Find the Taylor series of cos(x) around 0.",
    ],
)
def test_formulas_are_symbolic(question):
    assert is_symbolic(question)


@pytest.mark.parametrize(
    "question",
    [
        "Joe caught 3 pounds of crawfish on Thursday and 4 times that amount on Friday. How many pounds did he catch?",
        "A train leaves at 3 pm and travels 60 miles per hour for 2 hours. How far does it go?",
        "If x people share 12 apples equally and each gets 3, how many people are there?",
        "The speed limit is 55 mph; Sam drives 10% over it. How fast is he going?",
        "A factor of 2 separates the prices: the pen costs $3. What does the notebook cost?",
    ],
)
def test_word_problems_are_not_symbolic(question):
    assert not is_symbolic(question)


def test_every_math_gold_item_is_classified_by_its_source():
    for split in ("train", "dev", "holdout"):
        for line in (GOLDSETS / f"{split}.jsonl").read_text().splitlines():
            item = json.loads(line)
            assert is_symbolic(item["question"]) == ("sympy" in item["id"]), item["id"]
