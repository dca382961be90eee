"""Restricted parser from client text to SymPy objects.

SymPy's ``sympify``/``parse_expr`` call ``eval`` on their input, so a client string such as
``__import__('os').system('...')`` would run. This module instead parses text with ``ast`` (which
never executes anything) and builds SymPy objects from a whitelist of node types, names and
functions. Size, nesting, literal and exponent caps stop resource bombs before SymPy sees them;
the worker process's time and memory limits stop the rest.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from typing import Any

import sympy as sp

from sme_mcp.tools.errors import SmeError

MAX_INPUT_CHARS = 5000
MAX_NESTING = 50
MAX_DEPTH = 100
MAX_NODES = 3000
MAX_LITERAL_DIGITS = 300
MAX_POWER_DIGITS = 20000
MAX_FACTORIAL_ARG = 5000
MAX_MATRIX_CELLS = 100
MAX_NAME_CHARS = 32
MAX_EXPONENT = 10**6
# exp(a) with |a| past this would be e**a with over MAX_POWER_DIGITS digits; SymPy turns exp(n*log(b)) into the
# integer b**n at once, so such an argument is refused before exp() is built.
MAX_EXP_ARG = MAX_POWER_DIGITS * math.log(10)


class ParseError(SmeError, ValueError):
    """The text is not an expression this server accepts; the message says why."""


def clip(text: str, limit: int = 60) -> str:
    """Shortens client text quoted in an error message, so a 5000-character name is not echoed back."""
    return text if len(text) <= limit else f"{text[: limit // 2]}...({len(text)} characters)...{text[-10:]}"


def _capped_factorial(n: sp.Expr) -> sp.Expr:
    if n.is_Rational and abs(n) > MAX_FACTORIAL_ARG:
        raise ParseError(f"factorial argument {_short(n)} exceeds the limit of {MAX_FACTORIAL_ARG}")
    return sp.factorial(n)


def _capped_gamma(n: sp.Expr) -> sp.Expr:
    # gamma(n) of a rational n is evaluated eagerly through factorial(n - 1).
    if n.is_Rational and abs(n) > MAX_FACTORIAL_ARG:
        raise ParseError(f"gamma argument {_short(n)} exceeds the limit of {MAX_FACTORIAL_ARG}")
    return sp.gamma(n)


def _capped_binomial(n: sp.Expr, k: sp.Expr) -> sp.Expr:
    # binomial(n, k) of integers is evaluated eagerly and has about min(k, n-k)*log10(n) digits.
    if n.is_Integer and k.is_Integer and 0 < k < n:
        m = min(int(k), int(n - k))
        if m > MAX_FACTORIAL_ARG or m * math.log10(int(n)) > MAX_POWER_DIGITS:
            raise ParseError(
                f"binomial({_short(n)}, {_short(k)}) would be too large to compute (over {MAX_POWER_DIGITS} digits)"
            )
    return sp.binomial(n, k)


def _log(x: sp.Expr, base: sp.Expr | None = None) -> sp.Expr:
    return sp.log(x) if base is None else sp.log(x, base)


def magnitude(value: sp.Basic) -> float | None:
    """|value| of a numeric expression, estimated cheaply (3 digits); None when it is not a finite number.

    `inf` means too large for a float. Symbols, infinities and undefined values give None.
    """
    if not isinstance(value, sp.Expr) or not value.is_number:
        return None
    if value.is_Rational:
        p, q = abs(int(value.p)), int(value.q)
        if p == 0:
            return 0.0
        log10 = math.log10(p) - math.log10(q)  # exact enough for huge ints, never an overflow
        return math.inf if log10 > 300 else 10.0**log10
    try:
        approx = sp.N(value, 3)
        if not approx.is_number or approx.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
            return None
        return abs(complex(approx))
    except OverflowError:
        return math.inf
    except Exception:  # SymPy raises many types for values it cannot evaluate; the worker's limits still hold
        return None


def check_power_size(base: sp.Expr, exp: sp.Expr, what: str = "") -> None:
    """Refuses base**exp whose exact value would be too large to build, for any numeric exponent.

    Raises:
        ParseError: A numeric exponent beyond MAX_EXPONENT, or a numeric power beyond MAX_POWER_DIGITS digits.
    """
    size = magnitude(exp)
    if size is None:
        return
    prefix = f"{what}: " if what else ""
    if size > MAX_EXPONENT and base not in (0, 1, -1):
        raise ParseError(f"{prefix}exponent {_short(exp)} (about {size:.3g}) exceeds the limit of 10**6")
    base_size = magnitude(base)
    if base_size is not None and base_size not in (0.0, 1.0) and base_size != math.inf:
        digits = size * abs(math.log10(base_size))
        if digits > MAX_POWER_DIGITS:
            raise ParseError(f"{prefix}{_short(base)}**{_short(exp)} would have about {digits:.3g} digits; the limit "
                             f"is {MAX_POWER_DIGITS}")


def _capped_exp(arg: sp.Expr) -> sp.Expr:
    size = magnitude(arg)
    if size is not None and size > MAX_EXP_ARG:
        raise ParseError(f"exp() argument {_short(arg)} (about {size:.3g}) exceeds the limit of {MAX_EXP_ARG:.0f}")
    return sp.exp(arg)


def _capped_root(x: sp.Expr, n: sp.Expr) -> sp.Expr:
    # root(x, n) is x**(1/n): a tiny n is a huge exponent, so it goes through the same checks as '**'.
    if n == 0:
        raise ParseError("root() of degree 0 is undefined")
    return _power(x, sp.Integer(1) / n)


# name -> (callable, min args, max args)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    **{name: (getattr(sp, name), 1, 1) for name in (
        "sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "acot",
        "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "sqrt", "Abs",
        "floor", "ceiling", "sign", "re", "im", "conjugate", "erf",
    )},
    "gamma": (_capped_gamma, 1, 1),
    "exp": (_capped_exp, 1, 1),
    "abs": (sp.Abs, 1, 1),
    "arcsin": (sp.asin, 1, 1),
    "arccos": (sp.acos, 1, 1),
    "arctan": (sp.atan, 1, 1),
    "ln": (sp.log, 1, 1),
    "log": (_log, 1, 2),
    "atan2": (sp.atan2, 2, 2),
    "root": (_capped_root, 2, 2),
    "factorial": (_capped_factorial, 1, 1),
    "binomial": (_capped_binomial, 2, 2),
    "gcd": (sp.gcd, 2, 2),
    "lcm": (sp.lcm, 2, 2),
    "Min": (sp.Min, 1, 10),
    "Max": (sp.Max, 1, 10),
    "min": (sp.Min, 1, 10),
    "max": (sp.Max, 1, 10),
}

CONSTANTS: dict[str, sp.Expr] = {
    "pi": sp.pi, "E": sp.E, "e": sp.E, "I": sp.I, "oo": sp.oo, "inf": sp.oo,
    "infinity": sp.oo, "Infinity": sp.oo,
}

_NAME = re.compile(rf"^[A-Za-z][A-Za-z0-9_]{{0,{MAX_NAME_CHARS - 1}}}$")
# "2x" -> "2*x", "2(x+1)" -> "2*(x+1)", "2e3x" -> "2e3*x", ")(" -> ")*(", ")x" -> ")*x"; never inside
# "1e5" (the lookahead keeps an exponent with the number) nor inside a name such as "x2y" (the lookbehind).
_IMPLICIT_NUM = re.compile(
    r"(?<![A-Za-z_0-9.])((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?![eE][+-]?\d)([A-Za-z(])"
)
_IMPLICIT_PAREN = re.compile(r"\)\s*([A-Za-z0-9(])")
_FLOAT = re.compile(r"^(?:\d+\.?\d*|\.\d+)(?:e([+-]?\d+))?$")
_LONG_NUMBER = re.compile(rf"\d{{{MAX_LITERAL_DIGITS + 1},}}")


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise ParseError(f"{what} must be a string, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise ParseError(f"{what} is empty")
    if len(text) > MAX_INPUT_CHARS:
        raise ParseError(f"{what} is {len(text)} characters long; the limit is {MAX_INPUT_CHARS}")
    if "\x00" in text:
        raise ParseError(f"{what} contains a NUL character")
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        # A lone surrogate is not valid Unicode; compile() would fail on it with an encoding error.
        raise ParseError(f"{what} contains an invalid Unicode character (a lone surrogate)")
    if _LONG_NUMBER.search(text):
        # Checked on the text: Python itself refuses int literals past 4300 digits with a confusing message.
        raise ParseError(f"{what} contains a number with more than {MAX_LITERAL_DIGITS} digits")
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    if deepest > MAX_NESTING:
        raise ParseError(f"{what} nests brackets {deepest} deep; the limit is {MAX_NESTING}")
    return text


def _preprocess(text: str) -> str:
    # '^' must become '**' as text: as an AST BitXor it would bind looser than '+'.
    text = _IMPLICIT_NUM.sub(r"\1*\2", text.replace("^", "**"))
    return _IMPLICIT_PAREN.sub(r")*\1", text)


def _parse_ast(source: str, what: str) -> ast.expr:
    """Parses preprocessed text (see `_preprocess`) into an ``ast`` tree and checks its size and depth."""
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ParseError(f"{what} is not a valid expression: {exc.msg} (near column {exc.offset})") from None
    except (MemoryError, RecursionError, ValueError) as exc:
        raise ParseError(f"{what} could not be parsed: {type(exc).__name__}") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ParseError(f"{what} has {count} syntax nodes; the limit is {MAX_NODES}")
    depth = _depth(tree.body)
    if depth > MAX_DEPTH:
        raise ParseError(
            f"{what} nests operators {depth} levels deep (e.g. a long chain of '**' or '-'); the limit is {MAX_DEPTH}"
        )
    return tree.body


def _depth(root: ast.AST) -> int:
    """Nesting depth of an expression, computed without recursion.

    The left operand of a binary operator does not count as a level: ``a + b + c + ...`` is a
    left-deep tree as long as the sum, and `_Builder.binop` folds such chains in a loop.
    """
    deepest = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.operator | ast.unaryop | ast.cmpop | ast.expr_context):
                continue
            same_level = isinstance(node, ast.BinOp) and child is node.left
            stack.append((child, depth if same_level else depth + 1))
    return deepest


def _digits(n: sp.Rational) -> float:
    p, q = abs(int(n.p)), abs(int(n.q))
    return max(math.log10(p) if p > 1 else 0.0, math.log10(q) if q > 1 else 0.0)


def _short(value: sp.Basic) -> str:
    """Text of a number for an error message, abbreviated when long."""
    if value.is_Rational and max(abs(int(value.p)).bit_length(), int(value.q).bit_length()) > 1000:
        # str() of an int past 4300 digits raises ValueError (CPython's int-to-str limit).
        return f"a number with about {_digits(value):.0f} digits"
    return clip(str(value))


def _power(base: sp.Expr, exp: sp.Expr) -> sp.Expr:
    # SymPy evaluates numeric powers eagerly, so 9**9**9 must be refused before Pow() is built.
    if exp.is_Number and exp.is_finite and abs(exp) > MAX_EXPONENT:
        raise ParseError(f"exponent {_short(exp)} exceeds the limit of 10**6")
    if exp.is_Rational and base.is_Rational and base not in (0, 1, -1):
        # |exp| <= 10**6 here, so float() cannot overflow.
        size = abs(float(exp)) * _digits(base)
        if size > MAX_POWER_DIGITS:
            raise ParseError(
                f"{_short(base)}**{_short(exp)} would have about {size:.3g} digits; the limit is {MAX_POWER_DIGITS}"
            )
    elif isinstance(exp, sp.Expr) and exp.is_number and not exp.is_Rational:
        # A numeric exponent that is not a literal (E**(10**300*log(2)) is 2**(10**300)): bound its value.
        check_power_size(base, exp)
    return sp.Pow(base, exp)


class _Builder:
    """Turns a whitelisted ``ast`` tree into SymPy objects."""

    def __init__(self, what: str, symbols: dict[str, sp.Symbol], source: str = ""):
        self.what = what
        self.symbols = symbols
        self.source = source  # the text that was parsed, for the exact digits of float literals

    def fail(self, node: ast.AST, why: str) -> ParseError:
        col = getattr(node, "col_offset", None)
        where = f" (column {col + 1})" if col is not None else ""
        return ParseError(f"{self.what}: {why}{where}")

    def name(self, node: ast.Name) -> sp.Expr:
        ident = node.id
        if ident in CONSTANTS:
            return CONSTANTS[ident]
        if not _NAME.match(ident) or ident.startswith("_") or "__" in ident:
            raise self.fail(node, f"the name {clip(ident)!r} is not allowed")
        return self.symbols.setdefault(ident, sp.Symbol(ident))

    def build(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = self.build(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.List | ast.Tuple):
            return [self.build(elt) for elt in node.elts]
        if isinstance(node, ast.Attribute):
            raise self.fail(node, "attribute access ('.') is not allowed")
        if isinstance(node, ast.Subscript):
            raise self.fail(node, "indexing ('[...]') is not allowed")
        if isinstance(node, ast.Lambda):
            raise self.fail(node, "lambda is not allowed")
        raise self.fail(node, f"{type(node).__name__} syntax is not allowed in a math expression")

    def constant(self, node: ast.Constant) -> sp.Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float | complex):
            raise self.fail(node, f"literal {clip(repr(value))} is not a number")
        if isinstance(value, int):
            if value.bit_length() > MAX_LITERAL_DIGITS * 3.33:
                raise self.fail(node, f"integer literal longer than {MAX_LITERAL_DIGITS} digits")
            return sp.Integer(value)
        if isinstance(value, complex):
            return self.constant(ast.Constant(value.real)) + sp.I * self.constant(ast.Constant(value.imag))
        # The literal's own text, not the rounded float: "0.1" is exactly 1/10, "1e-400" is not 0, and
        # "3.14159265358979323846" keeps all its digits.
        literal = (ast.get_source_segment(self.source, node) or "").replace("_", "").lower()
        match = _FLOAT.match(literal)
        if match is None:  # not the literal's text (cannot happen for ast.parse output); use the float
            if not math.isfinite(value) or abs(value) > 10**MAX_LITERAL_DIGITS:
                raise self.fail(node, f"number literal {value!r} is out of range")
            return sp.Rational(repr(value))
        if match.group(1) and abs(int(match.group(1))) > MAX_LITERAL_DIGITS:
            why = f"number literal {clip(literal)!r} is out of range (exponent beyond ±{MAX_LITERAL_DIGITS})"
            raise self.fail(node, why)
        return sp.Rational(literal)

    def binop(self, node: ast.BinOp) -> sp.Expr:
        # Fold the left spine in a loop: recursing on 'a + b + c + ...' would need one Python
        # frame pair per term and hit the recursion limit on long (but shallow) sums.
        spine = [node]
        while isinstance(spine[-1].left, ast.BinOp):
            spine.append(spine[-1].left)
        value = self.build(spine[-1].left)
        for link in reversed(spine):
            value = self.apply(link, value, self.build(link.right))
        return value

    def apply(self, node: ast.BinOp, left: Any, right: Any) -> sp.Expr:
        if isinstance(left, list) or isinstance(right, list):
            raise self.fail(node, "arithmetic on lists is not supported")
        op = node.op
        if isinstance(op, ast.Add):
            return left + right
        if isinstance(op, ast.Sub):
            return left - right
        if isinstance(op, ast.Mult):
            return left * right
        if isinstance(op, ast.Div):
            return left / right
        if isinstance(op, ast.Pow):
            return _power(left, right)
        if isinstance(op, ast.Mod):
            return sp.Mod(left, right)
        if isinstance(op, ast.FloorDiv):
            return sp.floor(left / right)
        raise self.fail(node, f"operator {type(op).__name__} is not allowed")

    def call(self, node: ast.Call) -> sp.Expr:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only calls of named functions like sin(x) are allowed")
        fname = node.func.id
        if fname not in FUNCTIONS:
            raise self.fail(node, f"unknown function {clip(fname)!r}; allowed: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise self.fail(node, f"{fname}() takes no keyword arguments")
        func, lo, hi = FUNCTIONS[fname]
        if not lo <= len(node.args) <= hi:
            arity = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self.fail(node, f"{fname}() takes {arity} argument(s), got {len(node.args)}")
        args = [self.build(a) for a in node.args]
        if any(isinstance(a, list) for a in args):
            raise self.fail(node, f"{fname}() does not take a list")
        return func(*args)

    def compare(self, node: ast.Compare) -> sp.Basic:
        if len(node.ops) != 1:
            raise self.fail(node, "chained comparisons are not supported")
        left, right = self.build(node.left), self.build(node.comparators[0])
        ops: dict[type, Callable[[Any, Any], sp.Basic]] = {
            ast.Eq: sp.Eq, ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Gt: sp.Gt, ast.GtE: sp.Ge, ast.NotEq: sp.Ne,
        }
        op = ops.get(type(node.ops[0]))
        if op is None:
            raise self.fail(node, f"comparison {type(node.ops[0]).__name__} is not allowed")
        return op(left, right)


def _build(text: str, what: str, symbols: dict[str, sp.Symbol] | None = None) -> Any:
    text = _check_text(text, what)
    source = _preprocess(text)
    tree = _parse_ast(source, what)
    try:
        return _Builder(what, {} if symbols is None else symbols, source).build(tree)
    except ParseError as exc:
        # Limits raised inside SymPy calls (_power, factorial, ...) don't know which input they are in.
        if str(exc).startswith(what):
            raise
        raise ParseError(f"{what}: {exc}") from None


def parse_expression(text: str, what: str = "expression") -> sp.Expr:
    """Parses one scalar expression such as ``x**2*sin(x)`` or ``1/2 + 1/3``.

    Args:
        text: Client text. ``^`` means power; ``2x`` means ``2*x``.
        what: How error messages name this input.

    Raises:
        ParseError: The text is not a whitelisted expression or exceeds a size limit.
    """
    value = _build(text, what)
    if isinstance(value, list) or not isinstance(value, sp.Expr):
        raise ParseError(f"{what} must be a single expression, not a list or a comparison")
    return value


def parse_relation(text: str, what: str = "equation") -> sp.Basic:
    """Parses an equation or inequality; ``a = b`` and ``a == b`` both mean Eq(a, b).

    A bare expression ``e`` means ``e = 0``.
    """
    text = _check_text(text, what)
    parts = re.split(r"(?<![=<>!])=(?!=)", text)
    if len(parts) == 2:
        return sp.Eq(parse_expression(parts[0], what), parse_expression(parts[1], what))
    if len(parts) > 2:
        raise ParseError(f"{what} has more than one '='")
    value = _build(text, what)
    if isinstance(value, list):
        raise ParseError(f"{what} must be an equation, not a list")
    return value if isinstance(value, sp.core.relational.Relational) else sp.Eq(value, 0)


def parse_symbol(text: str, what: str = "variable") -> sp.Symbol:
    """Parses a single variable name such as ``x`` or ``theta``."""
    text = _check_text(text, what)
    if not _NAME.match(text) or "__" in text or text in CONSTANTS or text in FUNCTIONS:
        raise ParseError(f"{what} must be a plain name like x or theta, got {clip(text, 40)!r}")
    return sp.Symbol(text)


def parse_matrix(text: str, what: str = "matrix") -> sp.Matrix:
    """Parses a matrix written as nested lists, e.g. ``[[1, 2], [3, 4]]``."""
    rows = _build(text, what)
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) and r for r in rows):
        raise ParseError(f"{what} must be a list of rows, e.g. [[1, 2], [3, 4]]")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ParseError(f"{what} rows have different lengths")
    if len(rows) * width > MAX_MATRIX_CELLS:
        raise ParseError(f"{what} has {len(rows) * width} cells; the limit is {MAX_MATRIX_CELLS}")
    if any(isinstance(c, list) or not isinstance(c, sp.Expr) for r in rows for c in r):
        raise ParseError(f"{what} cells must be expressions")
    return sp.Matrix(rows)
