"""Tests for the SymPy operations, run in-process (the worker pool is tested in test_worker.py)."""

from __future__ import annotations

import time

import pytest
import sympy as sp

from sme_mcp.tools import sympy_ops as ops
from sme_mcp.tools.parse import ParseError, parse_expression


def test_operations_are_the_mcp_tools() -> None:
    assert set(ops.OPERATIONS) == {
        "evaluate", "simplify", "expand", "factor", "solve", "differentiate", "integrate", "limit", "series",
        "summation", "matrix_determinant", "matrix_inverse", "matrix_eigenvalues",
    }


def test_evaluate_is_exact_with_a_decimal_value() -> None:
    assert ops.evaluate("0.1+0.2") == {"result": "3/10", "latex": r"\frac{3}{10}", "numeric": "0.300000000000000"}
    assert ops.evaluate("1/2+1/3")["result"] == "5/6"
    assert ops.evaluate("2^10") == {"result": "1024", "latex": "1024", "numeric": None}
    pi50 = ops.evaluate("pi", digits=50)["numeric"]
    assert pi50 == "3.1415926535897932384626433832795028841971693993751"


def test_evaluate_digits_are_checked() -> None:
    for digits in (0, -1, 1001):
        with pytest.raises(ParseError, match="digits must be between 1 and 1000"):
            ops.evaluate("pi", digits=digits)


@pytest.mark.parametrize(
    ("op", "kwargs", "result"),
    [
        ("simplify", {"expression": "sin(x)**2 + cos(x)**2"}, "1"),
        ("expand", {"expression": "(x+1)**3"}, "x**3 + 3*x**2 + 3*x + 1"),
        ("factor", {"expression": "x**2 - 1"}, "(x - 1)*(x + 1)"),
        ("factor", {"expression": "360"}, "2**3*3**2*5"),
        ("factor", {"expression": "-12"}, "-2**2*3"),  # factorint(-12) has a -1 factor that must not show
        ("factor", {"expression": "97"}, "97"),
        ("solve", {"equations": ["x**2 = 4"]}, "x = -2; x = 2"),
        ("solve", {"equations": ["x + y = 3", "x - y = 1"]}, "x = 2, y = 1"),
        ("solve", {"equations": ["x**2 < 4"]}, "(-2 < x) & (x < 2)"),
        ("solve", {"equations": ["x = x + 1"]}, "no solution"),  # Eq() is already False
        ("solve", {"equations": ["1 = 2"]}, "no solution"),
        ("solve", {"equations": ["x = x"]}, "every value is a solution"),
        ("solve", {"equations": ["x**2 = -1"], "variables": ["x"]}, "x = -I; x = I"),
        ("differentiate", {"expression": "x**3", "order": 2}, "6*x"),
        ("differentiate", {"expression": "x**3*y", "variable": "y"}, "x**3"),
        ("integrate", {"expression": "x"}, "x**2/2"),
        ("integrate", {"expression": "x", "lower": "0", "upper": "2"}, "2"),
        ("integrate", {"expression": "exp(-x**2)", "lower": "-oo", "upper": "oo"}, "sqrt(pi)"),
        ("limit", {"expression": "sin(x)/x"}, "1"),
        ("limit", {"expression": "exp(-x)", "point": "oo"}, "0"),  # '+-' at infinity becomes one-sided
        ("limit", {"expression": "1/x", "point": "0", "direction": "+"}, "oo"),
        ("series", {"expression": "exp(x)", "order": 3}, "1 + x + x**2/2 + O(x**3)"),
        ("summation", {"expression": "1/k**2", "variable": "k", "upper": "oo"}, "pi**2/6"),
        ("summation", {"expression": "k", "variable": "k"}, "n*(n + 1)/2"),
        ("matrix_determinant", {"matrix": "[[1, 2], [3, 4]]"}, "-2"),
        ("matrix_inverse", {"matrix": "[[2, 0], [0, 4]]"}, "[[1/2, 0], [0, 1/4]]"),
        ("matrix_eigenvalues", {"matrix": "[[2, 0], [0, 3]]"}, "2, 3"),
        ("matrix_eigenvalues", {"matrix": "[[2, 0], [0, 2]]"}, "2 (multiplicity 2)"),
    ],
)
def test_operation_results(op: str, kwargs: dict, result: str) -> None:
    assert ops.OPERATIONS[op](**kwargs)["result"] == result


def test_solve_a_quintic_returns_its_roots_not_no_solution() -> None:
    # sp.solve([eq], [x]) answers [] for polynomials without radical roots; sp.solve(eq, [x]) gives CRootOf.
    out = ops.solve(["x**5 - x + 1"])
    assert out["result"].count("CRootOf(x**5 - x + 1") == 5
    assert out["numeric"] is not None and "-1.16730397826142" in out["numeric"]


@pytest.mark.parametrize("equation", ["x**5 - x + 1", "x**7 - 2*x**3 + 5", "(x**5 - x + 1)*(x - 2)"])
def test_numeric_roots_of_crootof_solutions_match_sympy_and_come_fast(equation: str) -> None:
    # CRootOf's index order is not sorted by real part (x**7 - 2*x**3 + 5 lists 1.17 - 0.40*I before
    # 0.19 - 1.34*I), so each numeric root must be the one inside that CRootOf's own interval.
    start = time.monotonic()
    out = ops.solve([equation])
    elapsed = time.monotonic() - start
    x = sp.Symbol("x")
    exact = sp.solve(parse_expression(equation), [x], dict=True)
    assert out["numeric"] == "; ".join(f"x = {sp.N(s[x], 15)}" for s in exact)
    assert elapsed < 1.5, f"solve took {elapsed:.2f} s; sp.N of CRootOf needs 1-2.5 s per quintic"


def test_large_finite_sum_uses_the_closed_form() -> None:
    start = time.monotonic()
    assert ops.summation("k", variable="k", lower="1", upper="10**8")["result"] == "5000000050000000"
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(
    ("op", "kwargs", "fragment"),
    [
        ("solve", {"equations": []}, "at least one equation"),
        ("solve", {"equations": ["x = 1"] * 11}, "at most 10 equations"),
        ("solve", {"equations": ["x = 1"], "variables": ["x"] * 11}, "at most 10 variables"),
        ("solve", {"equations": ["x = 1", "y ="]}, "equation 2"),
        ("solve", {"equations": ["x = 1"], "variables": ["2x"]}, "plain name"),
        ("differentiate", {"expression": "x", "order": 0}, "order must be between 1 and 50"),
        ("differentiate", {"expression": "x", "order": 51}, "order must be between 1 and 50"),
        ("differentiate", {"expression": "x*y"}, "several variables (x, y)"),
        ("differentiate", {"expression": "5"}, "no variable"),
        ("series", {"expression": "sin(x)", "order": 0}, "order must be between"),
        ("integrate", {"expression": "x", "lower": "0"}, "both 'lower' and 'upper'"),
        ("integrate", {"expression": "x**x"}, "no closed form"),
        ("integrate", {"expression": "x", "lower": "__import__('os')", "upper": "1"}, "lower"),
        ("limit", {"expression": "x", "direction": "up"}, "direction must be"),
        ("limit", {"expression": "x", "point": "1e999"}, "point"),
        ("matrix_determinant", {"matrix": "[[1, 2, 3], [4, 5, 6]]"}, "square matrix, got 2x3"),
        ("matrix_inverse", {"matrix": "[[1, 2], [2, 4]]"}, "singular"),
        ("matrix_eigenvalues", {"matrix": "[[1, 2]]"}, "square matrix, got 1x2"),
        ("expand", {"expression": "(x+1)**500"}, "the result has"),  # 58771 characters of output
        ("evaluate", {"expression": "factorial(10**8)"}, "factorial argument"),
    ],
)
def test_operation_errors(op: str, kwargs: dict, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        ops.OPERATIONS[op](**kwargs)
    assert fragment in str(info.value)


def test_results_too_long_to_print_are_refused_clearly() -> None:
    # In-process, CPython refuses ints past 4300 digits as text; the worker raises that limit to
    # MAX_RESULT_CHARS (see test_worker.py), either way the client gets a clear ParseError.
    with pytest.raises(ParseError, match="number with more than"):
        ops.evaluate("*".join(["10**20000"] * 3))


def test_many_variables_are_not_all_listed() -> None:
    names = "+".join(f"v{i}" for i in range(600))
    with pytest.raises(ParseError) as info:
        ops.differentiate(names)
    assert "several variables" in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize(
    ("equations", "variables", "proven"),
    [
        (["x**5 - x + 1", "y = x"], None, False),  # solvable (CRootOf), but sp.solve returns []
        (["x + a = x + b"], ["x"], False),  # depends on the parameters a and b
        (["x + y = 1", "x + y = 2"], None, True),  # inconsistent linear system
        (["exp(x) = 0"], None, True),  # solveset over the complex numbers is empty
        (["x = x + 1"], None, True),  # decided while parsing
    ],
)
def test_solve_says_no_solution_only_when_sympy_proves_it(equations, variables, proven) -> None:
    result = ops.solve(equations, variables)["result"]
    if proven:
        assert result == "no solution"
    else:
        assert result.startswith("no solution found") and "does not prove" in result
