"""The math expert's ReAct tools, run on a real SymPy worker pool."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

import pytest

from sme_mcp.experts.math_tools import sympy_tools
from sme_mcp.tools.worker import SympyWorkerPool


@pytest.fixture(scope="module")
def tools() -> Iterator[dict[str, Callable[..., str]]]:
    pool = SympyWorkerPool(size=1, timeout=10)
    try:
        yield {tool.__name__: tool for tool in sympy_tools(pool)}
    finally:
        pool.close()


def test_indefinite_integral_takes_no_bounds_and_shows_the_constant(tools):
    assert "lower" not in inspect.signature(tools["integrate"]).parameters
    assert tools["integrate"]("x*sin(3*x)", "x") == "-x*cos(3*x)/3 + sin(3*x)/9 + C"


def test_definite_integral_needs_both_bounds(tools):
    assert tools["definite_integral"]("x**2", "x", "0", "1") == "1/3"
    with pytest.raises(TypeError):
        tools["definite_integral"]("x**2", "x", "0")  # type: ignore[call-arg]


def test_a_refused_expression_is_a_one_line_observation(tools):
    out = tools["integrate"]("__import__('os')", "x")
    assert out.startswith("Error: ") and "\n" not in out and not out.endswith("+ C")


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("evaluate", ("(3 + 5) * 12 / 4",), "24"),
        ("differentiate", ("x**3", "x"), "3*x**2"),
        ("solve", ("x**2 - 5*x + 6 = 0", "x"), "x = 2; x = 3"),
        ("factor", ("x**2 - 1",), "(x - 1)*(x + 1)"),
        ("limit", ("sin(x)/x", "x", "0"), "1"),
    ],
)
def test_each_tool_returns_the_exact_result(tools, name, args, expected):
    assert tools[name](*args) == expected
