"""The math expert's written answer against its own SymPy tool result (real worker pool, no LM)."""

from __future__ import annotations

import pytest

from sme_mcp.experts.math_check import check_against_tools, last_tool_result
from sme_mcp.tools.worker import SympyWorkerPool


@pytest.fixture(scope="module")
def pool():
    pool = SympyWorkerPool(1, 10.0, 1024)
    yield pool
    pool.close()


def trajectory(*steps: tuple[str, dict, str]) -> dict:
    out: dict = {}
    for i, (name, args, observation) in enumerate(steps):
        out |= {f"thought_{i}": "", f"tool_name_{i}": name, f"tool_args_{i}": args, f"observation_{i}": observation}
    return out


def test_an_answer_that_agrees_with_the_tool_is_marked_checked(pool):
    steps = trajectory(("differentiate", {"expression": "x**3*sin(x)"}, "x**3*cos(x) + 3*x**2*sin(x)"),
                       ("finish", {}, "Completed."))
    answer, verification = check_against_tools("Find the derivative of x**3*sin(x)",
                                               "3*x**2*sin(x) + x**3*cos(x)", steps, pool)
    assert answer == "3*x**2*sin(x) + x**3*cos(x)"
    assert verification.method == "check" and verification.outcome == "passed"


def test_a_mis_copied_answer_is_replaced_by_the_exact_result_and_says_so(pool):
    # The tool's result copied back with a sign flipped.
    steps = trajectory(("integrate", {"expression": "x*exp(x)"}, "(x - 1)*exp(x) + C"))
    answer, verification = check_against_tools("What is the integral of x*exp(x)?", "x*exp(x) + exp(x)", steps, pool)
    assert answer == "(x - 1)*exp(x) + C"
    assert verification.method == "exact" and "disagreed" in verification.checked
    assert any("x*exp(x) + exp(x)" in d for d in verification.details)


def test_a_tool_the_question_does_not_ask_for_checks_nothing(pool):
    # solve gave an intermediate value; the question asks for something computed from it.
    steps = trajectory(("solve", {"equation": "2*x = 6"}, "x = 3"))
    answer, verification = check_against_tools("If 2x = 6, what is x squared plus one?", "10", steps, pool)
    assert (answer, verification) == ("10", None)


def test_failed_tool_calls_and_word_problems_are_left_unchecked(pool):
    failed = trajectory(("differentiate", {"expression": "x^^2"}, "Error: not a valid expression"))
    assert last_tool_result(failed) is None
    # DSPy's ReAct words a tool that raised as "Execution error in <tool>: ..."; the step before still counts.
    crashed = trajectory(("differentiate", {"expression": "x**2"}, "2*x"),
                         ("simplify", {}, "Execution error in simplify: missing 1 required positional argument"))
    assert last_tool_result(crashed) == ("differentiate", {"expression": "x**2"}, "2*x")
    assert check_against_tools("Differentiate x^^2", "2*x", failed, pool) == ("2*x", None)
    assert check_against_tools("Tom has 3 apples...", "5", None, pool) == ("5", None)
