"""SymPy operations on client text. They run inside a `SympyWorkerPool` process, never in the server.

Every operation takes plain strings and numbers, parses them with `tools.parse` and returns a
JSON-able dict with the exact result as text, as LaTeX and, for numbers, a decimal value.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import sympy as sp

from sme_mcp.tools.parse import (
    MAX_EXP_ARG,
    ParseError,
    check_power_size,
    clip,
    magnitude,
    parse_expression,
    parse_matrix,
    parse_relation,
    parse_symbol,
)

MAX_ORDER = 50
MAX_SOLUTIONS_SHOWN = 50
MAX_RESULT_CHARS = 20_000
NO_SOLUTION = {"result": "no solution", "latex": r"\emptyset", "numeric": None}
NOT_FOUND = {
    "result": "no solution found (SymPy found none, which does not prove there is none; try solving for fewer "
              "unknowns, or a simpler or numeric form)",
    "latex": r"\text{no solution found}", "numeric": None,
}


def _text(render: Callable[[], str]) -> str:
    """Renders a result as text, refusing results too long to send back."""
    try:
        text = render()
    except ValueError as exc:
        # CPython refuses to turn ints past sys.get_int_max_str_digits() digits into text.
        if "integer string conversion" not in str(exc):
            raise
        raise ParseError(
            f"the result contains a number with more than {sys.get_int_max_str_digits()} digits; "
            "try a smaller input"
        ) from None
    if len(text) > MAX_RESULT_CHARS:
        raise ParseError(f"the result has {len(text)} characters; the limit is {MAX_RESULT_CHARS}")
    return text


def _result(value: Any, digits: int = 15) -> dict[str, Any]:
    text = _text(lambda: str(value))
    latex = _text(lambda: sp.latex(value)) if isinstance(value, sp.Basic) else text
    numeric = None
    if isinstance(value, sp.Expr) and value.is_number and not value.is_Integer:
        n = sp.N(value, digits)
        if n.is_number and n.is_finite:
            numeric = str(n)
    return {"result": text, "latex": latex, "numeric": numeric}


def _check_at(expr: sp.Expr, var: sp.Symbol, value: sp.Expr, what: str) -> None:
    """Refuses `expr` at `var = value` when a power or exp() in it would grow past the parser's limits there.

    The parser bounds the powers it builds, but `2**x` with x = 10**300 (a limit point, an integration or
    summation bound) becomes 2**(10**300) only inside SymPy. Inner nodes are checked before the ones
    containing them, so no check builds the huge value it is looking for.
    """
    if not isinstance(value, sp.Expr) or not value.is_number or value.is_infinite or not expr.has(var):
        return
    for node in sp.postorder_traversal(expr):
        if not isinstance(node, sp.Pow | sp.exp) or not node.has(var):
            continue
        if isinstance(node, sp.exp):
            size = magnitude(node.args[0].subs(var, value))
            if size is not None and size > MAX_EXP_ARG:
                raise ParseError(f"at {what} = {clip(str(value))}, {clip(str(node))} would be exp() of about "
                                 f"{size:.3g}, past the limit of {MAX_EXP_ARG:.0f}; use a smaller {what}")
        else:
            try:
                check_power_size(node.base.subs(var, value), node.exp.subs(var, value))
            except ParseError as exc:
                raise ParseError(f"at {what} = {clip(str(value))}, {clip(str(node))} would be too large ({exc}); "
                                 f"use a smaller {what}") from None


def _variable(expr: sp.Expr, variable: str | None) -> sp.Symbol:
    if variable:
        return parse_symbol(variable)
    free = sorted(expr.free_symbols, key=str)
    if len(free) == 1:
        return free[0]  # type: ignore[return-value]
    if not free:
        raise ParseError("the expression has no variable; name one with 'variable'")
    names = clip(", ".join(str(s) for s in free), 200)
    raise ParseError(f"the expression has several variables ({names}); name one with 'variable'")


def evaluate(expression: str, digits: int = 15) -> dict[str, Any]:
    if not 1 <= digits <= 1000:
        raise ParseError("digits must be between 1 and 1000")
    return _result(parse_expression(expression), digits)


def simplify(expression: str) -> dict[str, Any]:
    return _result(sp.simplify(parse_expression(expression)))


def expand(expression: str) -> dict[str, Any]:
    return _result(sp.expand(parse_expression(expression)))


def factor(expression: str) -> dict[str, Any]:
    expr = parse_expression(expression)
    if expr.is_Integer and abs(int(expr)) > 1:
        # factorint(-12) lists -1 as a factor; the sign goes in front instead.
        factors = sp.factorint(abs(expr))
        text = "*".join(f"{p}**{k}" if k > 1 else str(p) for p, k in factors.items())
        sign = "-" if expr < 0 else ""
        latex = r" \cdot ".join(f"{p}^{{{k}}}" if k > 1 else str(p) for p, k in factors.items())
        return {"result": sign + text, "latex": sign + latex, "numeric": None}
    return _result(sp.factor(expr))


def solve(equations: list[str], variables: list[str] | None = None) -> dict[str, Any]:
    if not equations:
        raise ParseError("give at least one equation")
    if len(equations) > 10:
        raise ParseError("at most 10 equations at once")
    if variables and len(variables) > 10:
        raise ParseError("at most 10 variables at once")
    relations = [parse_relation(e, f"equation {i + 1}") for i, e in enumerate(equations)]
    given = [parse_symbol(v) for v in variables] if variables else None
    # SymPy decides some relations while building them: Eq(x, x + 1) is False, Eq(x, x) is True.
    if any(r is sp.false for r in relations):
        return NO_SOLUTION
    relations = [r for r in relations if r is not sp.true]
    if not relations:
        return {"result": "every value is a solution", "latex": r"\text{every value}", "numeric": None}
    unknowns = given or sorted(set().union(*(r.free_symbols for r in relations)), key=str)
    if not unknowns:
        raise ParseError("the equations have no variable to solve for")
    if len(relations) == 1 and not isinstance(relations[0], sp.Eq):
        answer = sp.solve(relations[0], unknowns[0])  # a univariate inequality
        return _result(answer)
    # One equation goes in alone: given as a one-element list, SymPy answers [] for polynomials it
    # cannot solve in radicals (x**5 - x + 1) instead of returning their CRootOf roots.
    system = relations[0] if len(relations) == 1 else relations
    solutions = sp.solve(system, unknowns, dict=True)
    if not solutions:
        # sp.solve answers [] also when it merely found nothing (a solvable polynomial system, for one).
        return NO_SOLUTION if _none_exists(relations, unknowns) else NOT_FOUND
    shown = solutions[:MAX_SOLUTIONS_SHOWN]
    text = _text(lambda: "; ".join(", ".join(f"{k} = {v}" for k, v in s.items()) for s in shown))
    latex = _text(
        lambda: r";\ ".join(", ".join(f"{sp.latex(k)} = {sp.latex(v)}" for k, v in s.items()) for s in shown)
    )
    numeric = None
    if all(v.is_number for s in shown for v in s.values()):
        decimal = _decimal_values(v for s in shown for v in s.values())
        numeric = "; ".join(", ".join(f"{k} = {decimal[v]}" for k, v in s.items()) for s in shown)
    return {"result": text, "latex": latex, "numeric": numeric}


def _in_interval(root: sp.Expr, interval: Any) -> bool:
    """Whether a numeric root lies in a CRootOf isolating interval (real) or rectangle (complex)."""
    re, im = (float(part) for part in root.as_real_imag())
    if hasattr(interval, "ax"):  # a complex rectangle (ax, ay) x (bx, by)
        return float(interval.ax) <= re <= float(interval.bx) and float(interval.ay) <= im <= float(interval.by)
    return im == 0 and float(interval.a) <= re <= float(interval.b)


def _decimal_values(values: Any, digits: int = 15) -> dict[sp.Expr, sp.Expr]:
    """15-digit decimals of exact numbers; CRootOf roots come from one `nroots` call per polynomial.

    `sp.N` of a CRootOf refines its root to 15 digits exactly: 1-2.5 s for a quintic on a cold worker,
    which alone can exceed the tool's time limit. `Poly.nroots` finds all roots numerically in
    milliseconds. Each CRootOf takes the one numeric root inside its isolating interval (which
    `sp.solve` already computed); if not exactly one lies there, it falls back to `sp.N`.
    """
    decimal: dict[sp.Expr, sp.Expr] = {}
    roots_of: dict[sp.Poly, list[sp.Expr]] = {}
    for value in values:
        if value in decimal:
            continue
        if isinstance(value, sp.CRootOf):
            if value.poly not in roots_of:
                try:
                    roots_of[value.poly] = value.poly.nroots(n=digits)
                except Exception:  # nroots gives up on some ill-conditioned polynomials; fall back to N
                    roots_of[value.poly] = []
            interval = value._get_interval()  # public accessors refine it further, which is the slow part
            inside = [r for r in roots_of[value.poly] if _in_interval(r, interval)]
            if len(inside) == 1:
                decimal[value] = inside[0]
                continue
        decimal[value] = sp.N(value, digits)
    return decimal


def _none_exists(relations: list[sp.Basic], unknowns: list[sp.Symbol]) -> bool:
    """Whether SymPy proves the equations have no solution (no other symbols in them).

    Proven: one equation in one unknown whose solution set over the complex numbers is empty, or a
    linear system that `linsolve` finds inconsistent. Anything else is only "none found".
    """
    exprs = [r.lhs - r.rhs for r in relations if isinstance(r, sp.Eq)]
    if len(exprs) != len(relations) or not set().union(*(e.free_symbols for e in exprs)) <= set(unknowns):
        return False
    try:
        if len(exprs) == 1 and len(unknowns) == 1:
            return sp.solveset(exprs[0], unknowns[0], domain=sp.S.Complexes) is sp.S.EmptySet
        if all(e.is_polynomial(*unknowns) and sp.Poly(e, *unknowns).total_degree() <= 1 for e in exprs):
            return sp.linsolve(exprs, *unknowns) is sp.S.EmptySet
    except Exception:  # SymPy raises many types for what it cannot decide; then nothing is proven
        return False
    return False


def differentiate(expression: str, variable: str | None = None, order: int = 1) -> dict[str, Any]:
    if not 1 <= order <= MAX_ORDER:
        raise ParseError(f"order must be between 1 and {MAX_ORDER}")
    expr = parse_expression(expression)
    return _result(sp.diff(expr, _variable(expr, variable), order))


def integrate(
    expression: str, variable: str | None = None, lower: str | None = None, upper: str | None = None
) -> dict[str, Any]:
    expr = parse_expression(expression)
    var = _variable(expr, variable)
    if (lower is None) != (upper is None):
        raise ParseError("give both 'lower' and 'upper' for a definite integral, or neither")
    if lower is None:
        value = sp.integrate(expr, var)
    else:
        lo, hi = parse_expression(lower, "lower"), parse_expression(upper, "upper")
        _check_at(expr, var, lo, "lower")
        _check_at(expr, var, hi, "upper")
        value = sp.integrate(expr, (var, lo, hi))
    if value.has(sp.Integral):
        raise ParseError(f"SymPy found no closed form for this integral (it stays {clip(str(value), 200)})")
    return _result(value)


def limit(expression: str, variable: str | None = None, point: str = "0", direction: str = "+-") -> dict[str, Any]:
    if direction not in ("+", "-", "+-"):
        raise ParseError("direction must be '+', '-' or '+-'")
    expr = parse_expression(expression)
    target = parse_expression(point, "point")
    if target.is_infinite and direction == "+-":
        direction = "-" if target == sp.oo else "+"
    var = _variable(expr, variable)
    _check_at(expr, var, target, "point")
    try:
        return _result(sp.limit(expr, var, target, direction))
    except ValueError as exc:
        raise ParseError(f"the limit does not exist as asked: {exc}") from None


def series(expression: str, variable: str | None = None, point: str = "0", order: int = 6) -> dict[str, Any]:
    if not 1 <= order <= MAX_ORDER:
        raise ParseError(f"order must be between 1 and {MAX_ORDER}")
    expr = parse_expression(expression)
    var, at = _variable(expr, variable), parse_expression(point, "point")
    _check_at(expr, var, at, "point")
    return _result(sp.series(expr, var, at, order))


def summation(expression: str, variable: str | None = None, lower: str = "1", upper: str = "n") -> dict[str, Any]:
    expr = parse_expression(expression)
    var = _variable(expr, variable)
    lo, hi = parse_expression(lower, "lower"), parse_expression(upper, "upper")
    _check_at(expr, var, lo, "lower")
    _check_at(expr, var, hi, "upper")
    if lo.is_Integer and hi.is_Integer and int(hi) - int(lo) > 10**6:
        # Large finite ranges would be summed term by term; ask for the closed form instead.
        value = sp.summation(expr, (var, lo, sp.Symbol("_upper"))).subs(sp.Symbol("_upper"), hi)
    else:
        value = sp.summation(expr, (var, lo, hi))
    return _result(sp.simplify(value) if value.free_symbols else value)


def matrix_determinant(matrix: str) -> dict[str, Any]:
    m = parse_matrix(matrix)
    if not m.is_square:
        raise ParseError(f"the determinant needs a square matrix, got {m.rows}x{m.cols}")
    return _result(sp.simplify(m.det()))


def matrix_inverse(matrix: str) -> dict[str, Any]:
    m = parse_matrix(matrix)
    if not m.is_square:
        raise ParseError(f"only square matrices have an inverse, got {m.rows}x{m.cols}")
    if m.det() == 0:
        raise ParseError("the matrix is singular (determinant 0) and has no inverse")
    inv = sp.simplify(m.inv())
    return {"result": _text(lambda: str(inv.tolist())), "latex": _text(lambda: sp.latex(inv)), "numeric": None}


def matrix_eigenvalues(matrix: str) -> dict[str, Any]:
    m = parse_matrix(matrix)
    if not m.is_square:
        raise ParseError(f"eigenvalues need a square matrix, got {m.rows}x{m.cols}")
    eig = m.eigenvals()
    text = _text(lambda: ", ".join(f"{v} (multiplicity {k})" if k > 1 else str(v) for v, k in eig.items()))
    latex = _text(lambda: ", ".join(sp.latex(v) for v in eig))
    numeric = None
    if all(v.is_number for v in eig):
        numeric = ", ".join(str(sp.N(v, 15)) for v in eig)
    return {"result": text, "latex": latex, "numeric": numeric}


OPERATIONS: dict[str, Callable[..., dict[str, Any]]] = {
    f.__name__: f
    for f in (
        evaluate, simplify, expand, factor, solve, differentiate, integrate, limit, series, summation,
        matrix_determinant, matrix_inverse, matrix_eigenvalues,
    )
}
