"""Math answers compared with SymPy: free-form model output (LaTeX, "the answer is ...", units, "+ C") against a gold.

Nothing here evaluates text: answers go through the whitelisting parser in `sme_mcp.tools.parse` (never
SymPy's ``sympify``, which calls ``eval``), and symbolic simplification runs in a killable
`SympyWorkerPool` worker. Every check returns a plain "no" on any error instead of raising.

Example:
    >>> math_equivalent("The answer is 1/2.", "0.5")
    True
    >>> math_equivalent("x**3/3 + 7", "x**3/3 + C")  # an antiderivative's gold allows any constant
    True
"""

from __future__ import annotations

import atexit
import logging
import math
import re
import threading
from dataclasses import dataclass

import sympy as sp

from sme_mcp.tools.parse import CONSTANTS, FUNCTIONS, MAX_INPUT_CHARS, ParseError, parse_expression
from sme_mcp.tools.worker import ComputeError, SympyWorkerPool

log = logging.getLogger(__name__)

MAX_PRED_CHARS = 20_000  # longer model output is cut to its tail, where the final answer is
MAX_ITEMS = 20  # solution sets larger than this are not compared
REL_TOL = 1e-6  # for answers written as decimals, e.g. 3.14159 vs pi
DEFAULT_TIMEOUT_S = 5.0

# ---------------------------------------------------------------------------------------------
# Math: normalize free-form answers, then compare them with SymPy
# ---------------------------------------------------------------------------------------------

_pool: SympyWorkerPool | None = None
_pool_lock = threading.Lock()


def get_worker_pool() -> SympyWorkerPool:
    """The SymPy worker pool the math check uses (started on first use, stopped at exit)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = SympyWorkerPool(size=2, timeout=DEFAULT_TIMEOUT_S, memory_mb=1024)
            atexit.register(_pool.close)
        return _pool


_GREEK = frozenset((
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu",
    "xi", "omicron", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
    "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega",
))
_LATEX_FUNCS = frozenset(n for n in FUNCTIONS if n.isalpha() and n.islower()) | {"arcsin", "arccos", "arctan"}
_LATEX_SYMBOLS = {
    "cdot": "*", "times": "*", "div": "/", "infty": "oo", "approx": "=", "neq": "!=", "le": "<=", "leq": "<=",
    "ge": ">=", "geq": ">=", "circ": "", "degree": "", "%": "", "$": "", "pi": "pi", "cdots": "", "ldots": "",
}
_LATEX_DROP = frozenset((
    "left", "right", "big", "Big", "bigg", "Bigg", "displaystyle", "textstyle", "quad", "qquad",
    ",", ";", ":", "!", "limits",
))
_LATEX_TEXT = frozenset(("text", "textbf", "textit", "mathrm", "mathbf", "mbox", "operatorname", "boxed", "fbox"))

_ANSWER_IS = re.compile(r"answer\s*(?:is|:|=)\s*:?\s*", re.IGNORECASE)
_CONSTANT_TERM = re.compile(r"\s*\+\s*(?:C|c|K|C_?\d+|const(?:ant)?)\s*$")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_MIXED_NUMBER = re.compile(r"^(-?)(\d+)\s+(\d+)\s*/\s*(\d+)$")
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*(?:\s*\(\s*[A-Za-z]\s*\))?)\s*=(?!=)\s*(.+)$", re.DOTALL)
_WORD = re.compile(r"[A-Za-z]{2,}")
_SPACE_PRODUCT = re.compile(r"([A-Za-z0-9_.)]+)\s+(?=[A-Za-z0-9(])")
# Whole tokens only: digits inside identifiers or hex strings (e.g. "f0a3") are not answers.
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])-?\d[\d,]*(?:\.\d+)?(?![A-Za-z0-9_])")


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the ``{...}`` group opening at ``start`` and the index after it."""
    if start >= len(text) or text[start] != "{":
        return None
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return None


def _latex_arg(text: str, i: int) -> tuple[str, int]:
    """One LaTeX macro argument: a braced group or a single character (as in ``\\frac12``)."""
    while i < len(text) and text[i] == " ":
        i += 1
    group = _braced(text, i)
    if group is not None:
        return group
    return (text[i], i + 1) if i < len(text) else ("", i)


def _latex_to_plain(text: str) -> str:
    """Rewrites the LaTeX that answers commonly use (``\\frac``, ``\\sqrt``, ``\\cdot``, ``^{}``...)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out.append({"{": "(", "}": ")"}.get(ch, ch))
            i += 1
            continue
        match = re.match(r"\\([A-Za-z]+|.)", text[i:])
        name = match.group(1) if match else ""
        i += 1 + len(name)
        if name in ("frac", "dfrac", "tfrac"):
            num, i = _latex_arg(text, i)
            den, i = _latex_arg(text, i)
            out.append(f"(({_latex_to_plain(num)})/({_latex_to_plain(den)}))")
        elif name == "sqrt":
            index = None
            if i < len(text) and text[i] == "[":
                end = text.find("]", i)
                if end > i:
                    index, i = text[i + 1 : end], end + 1
            arg, i = _latex_arg(text, i)
            arg = _latex_to_plain(arg)
            out.append(f"sqrt({arg})" if index is None else f"root({arg}, {_latex_to_plain(index)})")
        elif name in _LATEX_TEXT:
            arg, i = _latex_arg(text, i)
            out.append(f" {_latex_to_plain(arg)} ")
        elif name in _LATEX_FUNCS or name == "ln":
            out.append(name)
            # "\sin x" has no parentheses; give the parser "sin(x)".
            rest = re.match(r"\s*([A-Za-z0-9.]+)", text[i:])
            if rest and not text[i:].lstrip().startswith(("(", "{", "\\left", "^")):
                out.append(f"({rest.group(1)})")
                i += rest.end()
        elif name in _LATEX_SYMBOLS:
            out.append(f" {_LATEX_SYMBOLS[name]} ")
        elif name in _GREEK:
            out.append(f" {name} ")
        elif name in _LATEX_DROP or name == " ":
            out.append(" ")
        else:
            out.append(f" {name} ")  # unknown macro: keep its name, the parser will decide
    return "".join(out)


def _extract(text: str) -> str:
    """The final-answer part of a model's output."""
    text = text[-MAX_PRED_CHARS:]
    boxed = text.rfind("\\boxed")
    if boxed >= 0:
        group = _braced(text, text.find("{", boxed))
        if group is not None:
            return group[0]
    if "####" in text:
        return text.rsplit("####", 1)[1]
    matches = list(_ANSWER_IS.finditer(text))
    if matches:
        return text[matches[-1].end() :]
    return text


def _split_top(text: str, separators: str = ",;") -> list[str]:
    """Splits at separators outside brackets (so ``log(8, 2)`` stays whole)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch in separators and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


@dataclass(frozen=True)
class _Item:
    text: str  # normalized expression text
    name: str | None  # "x" for "x = 5"
    decimal: bool  # written with a decimal point, so compare with a tolerance


@dataclass(frozen=True)
class _Answer:
    items: tuple[_Item, ...]
    constant: bool  # ended in "+ C" (an indefinite integral)


def _drop_unit_words(text: str) -> str:
    def keep(match: re.Match[str]) -> str:
        word = match.group(0)
        follows_paren = text[match.end() :].lstrip().startswith("(")
        if word in _GREEK or word in CONSTANTS or (word in FUNCTIONS and follows_paren):
            return word
        return " "

    stripped = _WORD.sub(keep, text).strip()
    return stripped if stripped else text


def _space_products(text: str) -> str:
    # "pi r**2" means pi*r**2, but "sin (x)" is a call.
    def join(match: re.Match[str]) -> str:
        left = match.group(1)
        return left if left in FUNCTIONS else f"{left}*"

    return _SPACE_PRODUCT.sub(join, text.strip())


def _item(raw: str) -> _Item | None:
    text = raw.strip().rstrip(".").strip()
    name = None
    match = _ASSIGNMENT.match(text)
    if match:
        name, text = re.sub(r"\s+", "", match.group(1)), match.group(2).strip()
    text = _drop_unit_words(text)
    mixed = _MIXED_NUMBER.match(text)
    if mixed:
        sign, whole, num, den = mixed.groups()
        text = f"{sign}({whole} + {num}/{den})"
    text = _space_products(text).strip().rstrip(".")
    if not text:
        return None
    return _Item(text=text, name=name, decimal=bool(re.search(r"\d\.\d", text)))


def _normalize(answer: str, strip_constant: bool = True) -> _Answer | None:
    """Splits an answer into items; a trailing ``+ C`` is noted and, if `strip_constant`, removed."""
    text = _latex_to_plain(_extract(answer))
    text = text.replace("$", " ").replace("%", " ").replace("°", " ").replace("×", "*").replace("−", "-")
    text = _THOUSANDS.sub("", text).strip().rstrip(".").strip()
    constant = bool(_CONSTANT_TERM.search(text))
    if strip_constant:
        text = _CONSTANT_TERM.sub("", text)
    raw_items = [p for p in _split_top(text) if p]
    if len(raw_items) == 1:  # "x = 2 or x = 3"
        raw_items = [p.strip() for p in re.split(r"\s+(?:or|and)\s+", raw_items[0]) if p.strip()]
    if not raw_items or len(raw_items) > MAX_ITEMS:
        return None
    items = [_item(p) for p in raw_items]
    if any(i is None for i in items):
        return None
    return _Answer(items=tuple(i for i in items if i is not None), constant=constant)


def _parse(text: str) -> sp.Expr | list[sp.Expr] | None:
    """Parses an expression, or an ordered tuple like ``(3, pi/2)``; None if it is not one."""
    if len(text) > MAX_INPUT_CHARS:
        return None
    if text[:1] in "([" and text[-1:] in ")]":
        parts = _split_top(text[1:-1], ",")
        if len(parts) > 1:
            values = [_parse(p) for p in parts]
            if any(v is None or isinstance(v, list) for v in values):
                return None
            return values  # type: ignore[return-value]
    try:
        return parse_expression(text, "answer")
    except (ParseError, TypeError, ValueError, ArithmeticError, RecursionError, MemoryError):
        return None


class _Comparer:
    """Compares parsed answers, sending anything symbolic to the worker pool."""

    def __init__(self, pool: SympyWorkerPool, timeout_s: float, constant: bool):
        self.pool, self.timeout_s, self.constant = pool, timeout_s, constant

    def _run(self, op: str, key: str = "result", **kwargs: object) -> str | None:
        try:
            value = self.pool.run(op, timeout=self.timeout_s, **kwargs)[key]
            return None if value is None else str(value)
        except ComputeError as exc:
            log.debug("math check %s failed: %s", op, exc)
            return None

    def same(self, a: _Item, b: _Item) -> bool:
        if a.text.replace(" ", "") == b.text.replace(" ", ""):
            return True
        x, y = _parse(a.text), _parse(b.text)
        if x is None or y is None:
            return False
        if isinstance(x, list) or isinstance(y, list):
            if not (isinstance(x, list) and isinstance(y, list)) or len(x) != len(y):
                return False
            pairs = zip(x, y, strict=True)
            return all(self.same(_Item(str(p), None, a.decimal), _Item(str(q), None, b.decimal)) for p, q in pairs)
        return self._same_expr(x, y, a, b)

    def _same_expr(self, x: sp.Expr, y: sp.Expr, a: _Item, b: _Item) -> bool:
        if x == y or (x - y) == 0:
            return True
        if x.is_Rational and y.is_Rational:
            if a.decimal or b.decimal:
                return math.isclose(float(x), float(y), rel_tol=REL_TOL, abs_tol=1e-9)
            return False
        if not x.free_symbols and not y.free_symbols and (a.decimal or b.decimal):
            value = self._run("evaluate", "numeric", expression=f"({a.text}) - ({b.text})", digits=30)
            scale = float(x) if x.is_Rational else float(y) if y.is_Rational else 1.0
            try:
                return value is not None and abs(float(sp.Rational(value))) <= REL_TOL * max(1.0, abs(scale))
            except (TypeError, ValueError):
                return False
        difference = self._run("simplify", expression=f"({a.text}) - ({b.text})")
        if difference is None:
            return False
        if difference == "0":
            return True
        return self.constant and self._is_constant(difference)

    def _is_constant(self, text: str) -> bool:
        parsed = _parse(text)
        if parsed is None or isinstance(parsed, list):
            return False
        if not parsed.free_symbols:
            return bool(parsed.is_finite)
        for var in sorted(parsed.free_symbols, key=str):
            derivative = self._run("differentiate", expression=text, variable=str(var))
            if derivative is None or (derivative != "0" and self._run("simplify", expression=derivative) != "0"):
                return False
        return True


def _match_sets(cmp: _Comparer, pred: tuple[_Item, ...], gold: tuple[_Item, ...]) -> bool:
    if len(pred) != len(gold):
        return False
    named = all(i.name for i in pred + gold) and len({i.name for i in gold}) == len(gold) > 1
    if named:  # a system's solution "x = 1, y = 2": match by variable
        by_name = {i.name: i for i in pred}
        return all(g.name in by_name and cmp.same(by_name[g.name], g) for g in gold)
    unused = list(pred)
    for g in gold:
        hit = next((p for p in unused if cmp.same(p, g)), None)
        if hit is None:
            return False
        unused.remove(hit)
    return True


def _dedupe(items: tuple[_Item, ...]) -> tuple[_Item, ...]:
    seen: dict[str, _Item] = {}
    for item in items:
        seen.setdefault(f"{item.name}={item.text.replace(' ', '')}", item)
    return tuple(seen.values())


def _fallback_number(text: str) -> _Item | None:
    """The number right after the last "answer is"/boxed marker, else the last number in the text."""
    text = text[-MAX_PRED_CHARS:]
    extracted = _extract(text)
    numbers = _NUMBER.findall(extracted)
    if not numbers:
        return None
    return _item((numbers[0] if extracted != text else numbers[-1]).replace(",", ""))


def math_equivalent(
    pred: str, gold: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, pool: SympyWorkerPool | None = None
) -> bool:
    """True if a free-form math answer means the same as the gold answer.

    Handles ``$15``, ``15.0``, ``15 dollars``, ``1,000``, ``x = 5``, "The answer is 12",
    ``\\boxed{}`` and simple LaTeX; ``2, 3`` and ``x = 3; x = 2`` compare as sets.

    Only the gold decides whether a constant difference is accepted: a gold ending in ``+ C`` (an
    indefinite integral) accepts any antiderivative, written with or without its own ``+ C``
    (``x**3/3 + 5 + C`` and ``x**3/3`` both match ``x**3/3 + C``). A prediction's ``+ C`` never
    widens equality: against a gold without one it stays part of the expression, with ``C`` a free
    symbol, so ``6*x + C`` does not match ``6*x + 2``, nor ``18 + C`` the number ``18``.

    When the final answer cannot be parsed and the gold is a number, the first number after the
    last "answer is" (or else the last number in the output) is used, as GSM8K evaluations usually do.

    Args:
        pred: The model's answer, possibly with working before it.
        gold: The gold answer in SymPy syntax (or LaTeX).
        timeout_s: Limit for each symbolic step in the worker pool.
        pool: Worker pool to use; by default a shared one started on first use.

    Returns:
        False for anything unparseable, refused, timed out or different; never raises.
    """
    try:
        if not isinstance(pred, str) or not isinstance(gold, str) or not pred.strip() or not gold.strip():
            return False
        gold_answer = _normalize(gold)
        if gold_answer is None:
            return False
        # A "+ C" is notation to drop only where the gold is an antiderivative too.
        pred_answer = _normalize(pred, strip_constant=gold_answer.constant)
        gold_items = _dedupe(gold_answer.items)
        cmp = _Comparer(pool or get_worker_pool(), timeout_s, gold_answer.constant)
        if pred_answer is not None and all(_parse(i.text) is not None for i in pred_answer.items):
            return _match_sets(cmp, _dedupe(pred_answer.items), gold_items)
        gold_value = _parse(gold_items[0].text) if len(gold_items) == 1 else None
        if isinstance(gold_value, sp.Expr) and gold_value.is_Number:
            number = _fallback_number(pred)
            return number is not None and cmp.same(number, gold_items[0])
        return pred_answer is not None and _match_sets(cmp, _dedupe(pred_answer.items), gold_items)
    except Exception:  # a metric must never take down an optimization run
        log.debug("math_equivalent failed", exc_info=True)
        return False
