"""The SymPy operations as plain functions for `dspy.ReAct`, each running in the worker pool."""

from __future__ import annotations

from collections.abc import Callable

from sme_mcp.tools.worker import ComputeError, SympyWorkerPool


def sympy_tools(pool: SympyWorkerPool) -> list[Callable[..., str]]:
    """Builds the ReAct tool functions bound to `pool`.

    The docstrings and signatures are what the LM sees, so they name argument formats precisely.
    A refused or failed computation comes back as a one-line "Error: ..." observation rather than
    an exception, whose traceback would bloat every later ReAct prompt of a small model.
    Indefinite and definite integrals are separate tools: given one tool with optional bounds,
    the 1.5B model filled in bounds for indefinite integrals (7 of its 16 symbolic misses on
    the math holdout).
    """

    def _text(op: str, **kwargs: object) -> str:
        try:
            return str(pool.run(op, **{k: v for k, v in kwargs.items() if v is not None})["result"])
        except ComputeError as exc:
            return f"Error: {exc}. Use Python syntax such as x**3*sin(x)."

    def evaluate(expression: str) -> str:
        """Exactly evaluate an arithmetic expression, e.g. '(3 + 5) * 12 / 4' or '2**100'."""
        return _text("evaluate", expression=expression)

    def simplify(expression: str) -> str:
        """Simplify an expression, e.g. 'sin(x)**2 + cos(x)**2'."""
        return _text("simplify", expression=expression)

    def solve(equation: str, variable: str | None = None) -> str:
        """Solve an equation for a variable, e.g. equation='x**2 - 5*x + 6 = 0', variable='x'."""
        return _text("solve", equations=[equation], variables=[variable] if variable else None)

    def differentiate(expression: str, variable: str = "x", order: int = 1) -> str:
        """Differentiate an expression with respect to a variable, e.g. 'x**3*sin(x)', 'x'."""
        return _text("differentiate", expression=expression, variable=variable, order=order)

    def integrate(expression: str, variable: str = "x") -> str:
        """Indefinite integral (antiderivative) of an expression, e.g. 'x*sin(3*x)', 'x'; the result ends in + C."""
        result = _text("integrate", expression=expression, variable=variable)
        return result if result.startswith("Error") else f"{result} + C"

    def definite_integral(expression: str, variable: str, lower: str, upper: str) -> str:
        """Definite integral between two bounds the question gives, e.g. 'x**2', 'x', '0', '1'."""
        return _text("integrate", expression=expression, variable=variable, lower=lower, upper=upper)

    def limit(expression: str, variable: str = "x", point: str = "0") -> str:
        """Limit of an expression as the variable approaches a point ('oo' is infinity)."""
        return _text("limit", expression=expression, variable=variable, point=point)

    def factor(expression: str) -> str:
        """Factor a polynomial or an integer, e.g. 'x**2 - 1' or '360'."""
        return _text("factor", expression=expression)

    return [evaluate, simplify, solve, differentiate, integrate, definite_integral, limit, factor]
