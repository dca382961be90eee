"""The exact fast path: a plain math request ("derivative of x**3*sin(x)", "15% of 240") answered by SymPy alone.

No router and no LM: `exact_request` (exact_math.py) recognises the request, a SymPy worker computes it,
and the answer says it was computed, not generated.

Example:
    >>> from sme_mcp.tools.worker import SympyWorkerPool
    >>> pool = SympyWorkerPool(1, 10.0, 512)
    >>> exact_answer("What is 15% of 240?", pool, AnswerTrace()).answer  # doctest: +SKIP
    '36'
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from sme_mcp.experts.answer import ExpertAnswer, Verification
from sme_mcp.experts.answer_trace import AnswerTrace
from sme_mcp.experts.exact_math import exact_request
from sme_mcp.experts.fast_path import arithmetic_expression
from sme_mcp.tools.worker import ComputeError, SympyWorkerPool

log = logging.getLogger(__name__)


def _real_solutions(result: dict[str, Any]) -> dict[str, Any] | None:
    """A `solve` result with the solutions that involve the imaginary unit dropped (None: none left)."""
    parts = [p for p in str(result["result"]).split("; ") if not re.search(r"\bI\b", p)]
    if not parts:
        return None
    if len(parts) == len(str(result["result"]).split("; ")):
        return result
    return {"result": "; ".join(parts), "latex": "; ".join(parts), "numeric": None}


def exact_answer(question: str, pool: SympyWorkerPool, trace: AnswerTrace) -> ExpertAnswer | None:
    """The SymPy answer to an exact math request, or None when the question needs an expert.

    Raises:
        ComputeError: Plain arithmetic that SymPy refused (nothing an expert could add).
    """
    request = exact_request(question)
    if request is None:
        return None
    plain_arithmetic = arithmetic_expression(question) is not None
    try:
        result = pool.run(request.op, **request.kwargs)
    except ComputeError as exc:
        if plain_arithmetic:
            raise  # nothing an expert could add: the expression itself is refused
        log.info("exact %s did not apply (%s); asking the experts", request.op, exc)
        return None
    trace.add_tool(request.op)
    if result["result"] in ("zoo", "nan"):  # 1/0, 0/0, an unbounded limit: say so instead of a symbol
        what = "the limit does not exist" if request.op == "limit" else "undefined"
        return ExpertAnswer(
            answer=what, domain="math", routed_by="fast_path", confidence=1.0,
            reasoning=f"Exact by SymPy ({request.op}): {request.task} is {result['result']} ({what})",
            backend="sympy", model=None, latency_ms=(time.perf_counter() - trace.started) * 1000,
            tools_used=[request.op], verification=Verification(
                method="exact", outcome="passed", checked=f"computed by SymPy: {request.task}"),
        )
    if request.real_only:
        result = _real_solutions(result)
        if result is None:
            return None  # no real solution listed: let the experts say what SymPy could not
    text = f"{result['result']}{request.suffix}"
    numeric = result.get("numeric")
    return ExpertAnswer(
        answer=text, domain="math", routed_by="fast_path", confidence=1.0,
        verification=Verification(method="exact", outcome="passed", checked=f"computed by SymPy: {request.task}"),
        reasoning=f"Exact by SymPy ({request.op}): {request.task} = {text}" + (f" ≈ {numeric}" if numeric else ""),
        backend="sympy", model=None, latency_ms=(time.perf_counter() - trace.started) * 1000,
        tools_used=[request.op],
    )
