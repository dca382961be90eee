"""Checks a math answer the model wrote against the exact result its own SymPy tool call returned.

The math expert's ReAct program calls a SymPy tool, then writes the final answer itself; a small
model sometimes copies the tool's result wrong (a dropped term, a sign, an unevaluated integral).
The last successful tool result is exact, so the written answer is compared with it by SymPy
equivalence (`optimize.metrics.math_equivalent`, in the worker pool). When they agree, the answer
is returned as checked; when they disagree, the tool's exact result is returned instead and the
verification says so. Answers with no tool call (word problems) are left unchecked.

Example:
    >>> answer, verification = check_against_tools("Differentiate x**3", "3*x**2", trajectory, pool)
    >>> verification.outcome
    'passed'
"""

from __future__ import annotations

import re
import time
from typing import Any

from sme_mcp.experts.answer import Verification

# A tool result is the answer only when the tool is what the question asks for; a result of another tool
# may be an intermediate step (solve, then evaluate an expression at the solution by hand).
ASKS = {
    "differentiate": re.compile(r"\b(derivative|differentiate|d/dx)\b", re.I),
    "integrate": re.compile(r"\b(integral|integrate|antiderivative)\b", re.I),
    "definite_integral": re.compile(r"\b(integral|integrate)\b", re.I),
    "solve": re.compile(r"\b(solve|roots?|zeros?)\b", re.I),
    "limit": re.compile(r"\blimit\b", re.I),
    "factor": re.compile(r"\bfactor(ize|ise)?\b", re.I),
    "simplify": re.compile(r"\bsimplify\b", re.I),
}
CHECKED_TOOLS = tuple(ASKS)


def last_tool_result(trajectory: dict[str, Any]) -> tuple[str, dict[str, Any], str] | None:
    """(tool, arguments, result) of the last tool call that succeeded, or None."""
    steps = sorted(int(key.rsplit("_", 1)[1]) for key in trajectory if key.startswith("tool_name_"))
    for idx in reversed(steps):
        name = trajectory.get(f"tool_name_{idx}")
        result = trajectory.get(f"observation_{idx}")
        failed = not isinstance(result, str) or not result or result.startswith(("Error", "Execution error"))
        if name in CHECKED_TOOLS and not failed:
            args = trajectory.get(f"tool_args_{idx}")
            return str(name), args if isinstance(args, dict) else {}, result
    return None


def check_against_tools(question: str, answer: str, trajectory: dict[str, Any] | None,
                        pool: Any) -> tuple[str, Verification | None]:
    """The answer to return and how it was checked; (answer, None) when no tool result applies.

    Args:
        question: The question, to tell whether the last tool computed what it asks for.
        answer: The final answer the model wrote.
        trajectory: The ReAct trajectory (tool names, arguments, observations).
        pool: The SymPy worker pool the comparison runs in (bounded time and memory).
    """
    from sme_mcp.optimize.metrics import math_equivalent

    found = last_tool_result(trajectory or {})
    if found is None or not ASKS[found[0]].search(question):
        return answer, None
    tool, args, result = found
    call = f"{tool}({', '.join(f'{k}={v!r}' for k, v in args.items())})"
    started = time.perf_counter()
    agrees = math_equivalent(answer, result, pool=pool)
    seconds = round(time.perf_counter() - started, 3)
    if agrees:
        return answer, Verification(method="check", outcome="passed", seconds=seconds,
                                    checked=f"the answer is SymPy-equivalent to the exact result of {call}",
                                    details=[f"{tool} returned {result}"])
    return result, Verification(
        method="exact", outcome="passed", seconds=seconds,
        checked=f"computed by SymPy: {call}; the model's own answer disagreed with it and was replaced",
        details=[f"the model wrote {answer!r}", f"{tool} returned {result}"],
    )
