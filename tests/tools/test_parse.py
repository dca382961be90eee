"""Tests for the restricted parser: what it accepts, what it refuses, and that it never evaluates text."""

from __future__ import annotations

import ast
import builtins
import contextlib
import time

import pytest
import sympy as sp
import sympy.parsing.sympy_parser as sympy_parser

from sme_mcp.tools import parse
from sme_mcp.tools.parse import ParseError, parse_expression, parse_matrix, parse_relation, parse_symbol

x, y = sp.symbols("x y")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2x^2", 2 * x**2),
        ("2(x+1)", 2 * x + 2),
        ("(x+1)(x-1)", (x + 1) * (x - 1)),
        ("2sin(x)", 2 * sp.sin(x)),
        ("x^2^3", x**8),  # '^' is right-associative like '**'
        ("-x^2", -(x**2)),  # unary minus binds looser than power
        ("2^-1", sp.Rational(1, 2)),
        ("0.1+0.2", sp.Rational(3, 10)),
        ("1e5", sp.Integer(100000)),  # not 1*e5
        ("1E5", sp.Integer(100000)),
        ("1.5e3", sp.Integer(1500)),
        ("1e-5", sp.Rational(1, 100000)),
        ("2e3x", 2000 * x),
        ("5e-3x", x / 200),
        (".5x", x / 2),
        ("2e", 2 * sp.E),  # a lone 'e' after a number is Euler's number, not an exponent
        ("2pi", 2 * sp.pi),
        ("e", sp.E),
        ("E", sp.E),
        ("I", sp.I),
        ("I**2", sp.Integer(-1)),
        ("oo", sp.oo),
        ("-oo", -sp.oo),
        ("x2y", sp.Symbol("x2y")),  # digits inside a name are not implicit multiplication
        ("1_000", sp.Integer(1000)),
        ("3.14159265358979323846", sp.Rational(314159265358979323846, 10**20)),  # no float rounding
        ("sqrt(8)", 2 * sp.sqrt(2)),
        ("log(8, 2)", sp.Integer(3)),
        ("ln(E)", sp.Integer(1)),
        ("abs(-3)", sp.Integer(3)),
        ("7 // 2", sp.Integer(3)),
        ("7 % 3", sp.Integer(1)),
        ("factorial(5)", sp.Integer(120)),
        ("binomial(10, 3)", sp.Integer(120)),
        ("gamma(5)", sp.Integer(24)),
        ("(1\n+2)", sp.Integer(3)),  # a newline inside brackets is fine
        ("  x  ", x),
        ("ｘ + 1", x + 1),  # Python normalizes fullwidth letters (NFKC) to ASCII names
        ("((((((((((1))))))))))", sp.Integer(1)),
        ("2**2**2**2**2 - 2**65536", sp.Integer(0)),  # 19729 digits: inside the limit
    ],
)
def test_tricky_valid_expressions(text: str, expected: sp.Expr) -> None:
    assert parse_expression(text) == expected


def test_long_flat_sum_does_not_hit_the_recursion_limit() -> None:
    # 900 terms are a left-deep tree 900 levels deep; the builder folds it in a loop.
    assert parse_expression("+".join(["1"] * 900)) == 900
    assert parse_expression("*".join(["x"] * 700)) == x**700


def test_symbols_are_plain_and_shared() -> None:
    expr = parse_expression("x*y + x")
    assert expr.free_symbols == {x, y}
    assert all(type(s) is sp.Symbol for s in expr.free_symbols)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x^2 = 4", sp.Eq(x**2, 4)),
        ("x == 1", sp.Eq(x, 1)),
        ("x <= 1", sp.Le(x, 1)),
        ("x > 1", sp.Gt(x, 1)),
        ("x != 1", sp.Ne(x, 1)),
        ("x - 1", sp.Eq(x - 1, 0)),  # a bare expression means '= 0'
    ],
)
def test_parse_relation(text: str, expected: sp.Basic) -> None:
    assert parse_relation(text) == expected


def test_parse_symbol_and_matrix() -> None:
    assert parse_symbol("theta") == sp.Symbol("theta")
    assert parse_matrix("[[1, x], [0.5, 2]]") == sp.Matrix([[1, x], [sp.Rational(1, 2), 2]])
    for bad in ("pi", "sin", "x y", "__x", "2x", "x.y", ""):
        with pytest.raises(ParseError):
            parse_symbol(bad)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('touch /tmp/never')", "only calls of named functions"),
        ("x.__class__", "attribute access"),
        ("().__class__.__bases__[0].__subclasses__()", "only calls of named functions"),
        ("().__class__.__bases__[0]", "indexing"),
        ("x[0]", "indexing"),
        ("lambda: 1", "lambda is not allowed"),
        ("'a'", "is not a number"),
        ("b'a'", "is not a number"),
        ("f'{x}'", "JoinedStr"),
        ("(y := 2)", "NamedExpr"),
        ("[i for i in (1, 2)]", "ListComp"),
        ("sin(*[x])", "Starred"),
        ("sin(x=1)", "keyword"),
        ("Symbol('x')", "unknown function 'Symbol'"),
        ("sympify('1')", "unknown function 'sympify'"),
        ("sin(x)(1)" + ".real", "attribute access"),
        ("True", "is not a number"),
        ("_x", "not allowed"),
        ("x @ y", "MatMult"),
        ("not x", "UnaryOp"),
        ("x < y < 1", "chained comparisons"),
        ("sin()", "takes 1 argument"),
        ("Max()", "takes 1 to 10 argument"),
        ("9**9**9", "exponent 387420489 exceeds"),
        ("9**99999", "digits; the limit is"),
        ("2**(10**300*10**300)", "exponent"),
        ("(1/3)**(10**7)", "exponent"),
        ("factorial(10**8)", "factorial argument"),
        ("factorial(factorial(20))", "factorial argument"),
        ("gamma(10**8)", "gamma argument"),
        ("binomial(10**8, 5*10**7)", "binomial"),
        ("(" * 51 + "1" + ")" * 51, "nests brackets 51 deep"),
        ("-" * 200 + "1", "levels deep"),
        ("x**" * 150 + "x", "levels deep"),
        ("1+" * 1200 + "1", "syntax nodes"),
        ("x" * 5001, "5001 characters long"),
        ("", "is empty"),
        (" \t\n ", "is empty"),
        ("1\x00", "NUL"),
        ("\udcff", "lone surrogate"),
        ("1" * 301, "more than 300 digits"),
        ("1" * 4301, "more than 300 digits"),
        ("1e999", "out of range"),
        ("1e-999", "out of range"),  # must not underflow to 0
        ("(", "never closed"),
        ("x)", "unmatched"),
        ("１", "invalid character"),
        ("\u200f1", "non-printable"),
        ("1 2", "invalid syntax"),
        ("[1, 2]", "single expression"),
        ("x > 1", "single expression"),
    ],
)
def test_refused_with_a_clear_message(text: str, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_expression(text)
    message = str(info.value)
    assert fragment in message
    assert message.startswith("expression")
    assert len(message) < 600  # the input is never echoed back in full


def test_non_string_input_is_refused() -> None:
    for value in (5, None, ["x"], b"x"):
        with pytest.raises(ParseError, match="must be a string"):
            parse_expression(value)  # type: ignore[arg-type]


def test_long_names_are_not_echoed_back() -> None:
    with pytest.raises(ParseError) as info:
        parse_expression("x" * 4999)
    assert len(str(info.value)) < 200 and "4999 characters" in str(info.value)


def test_relation_errors() -> None:
    with pytest.raises(ParseError, match="more than one '='"):
        parse_relation("x = 1 = 2")
    with pytest.raises(ParseError, match="empty"):
        parse_relation("=")
    with pytest.raises(ParseError, match="not a list"):
        parse_relation("[x, y]")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[1, 2], [3]]", "different lengths"),
        ("[]", "list of rows"),
        ("[[]]", "list of rows"),
        ("1", "list of rows"),
        ("[[[1]]]", "cells must be expressions"),
        ("[[x > 1]]", "cells must be expressions"),
        ("[" + ",".join(["[" + ",".join(["1"] * 11) + "]"] * 11) + "]", "121 cells"),
        ("[[1]*1000]", "arithmetic on lists"),
    ],
)
def test_matrix_errors(text: str, fragment: str) -> None:
    with pytest.raises(ParseError, match=fragment.replace("[", r"\[")):
        parse_matrix(text)


def test_deep_nesting_is_refused_before_ast_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    # ast.parse itself can raise RecursionError/MemoryError (or crash) on pathological nesting, so
    # the bracket check must run first.
    calls = []
    real_parse = ast.parse
    monkeypatch.setattr(parse.ast, "parse", lambda *a, **k: calls.append(a) or real_parse(*a, **k))
    for text in ("(" * 2500 + ")" * 2500, "[" * 2400 + "]" * 2400, "sin(" * 900 + "x" + ")" * 900):
        with pytest.raises(ParseError, match="nests brackets"):
            parse_expression(text)
    assert calls == []
    parse_expression("(1)")
    assert len(calls) == 1


def test_pathological_inputs_fail_fast() -> None:
    texts = [
        "-" * 4999 + "1", "x**" * 1249 + "x", "(" * 50 + "x" + ")" * 50, "1+" * 2499 + "1", "[" * 50 + "]" * 50,
        "9" * 5000, "1_" * 2499 + "1", "x" * 5000, "sin(" * 50 + "x" + ")" * 50, "1e" + "9" * 4998,
    ]
    for text in texts:
        start = time.monotonic()
        with contextlib.suppress(ParseError):  # anything else (RecursionError, MemoryError) fails the test
            parse_expression(text)
        assert time.monotonic() - start < 2.0, text[:40]


def test_parser_never_evaluates_text(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every eval path SymPy offers for strings goes through parse_expr/eval_expr or builtins.eval.
    parse_expression("sin(x) + gamma(5) + Max(x, 1)")  # import SymPy's lazily loaded modules first

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("text was evaluated")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(sympy_parser, "parse_expr", forbidden)
    monkeypatch.setattr(sympy_parser, "eval_expr", forbidden)
    with pytest.raises(AssertionError):
        sp.sympify("1 + 1")  # the patch does cover SymPy's string path
    assert parse_expression("2x^2 + 0.1 + sin(x)/3 + factorial(5) + log(8, 2)") == (
        2 * x**2 + sp.sin(x) / 3 + sp.Rational(1, 10) + 123
    )
    assert parse_matrix("[[1, x], [0.5, 2]]").shape == (2, 2)
    assert parse_relation("x^2 = 4") == sp.Eq(x**2, 4)
    with pytest.raises(ParseError):
        parse_expression("__import__('os').system('true')")
