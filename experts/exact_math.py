"""Maps plainly worded math requests straight onto one exact SymPy operation: no router, no LM.

"What is the derivative of x**3*sin(x)?", "Solve x**2 - 5*x + 6 = 0", "What is 15% of 240?",
"integrate x*exp(x) dx", "limit of sin(x)/x as x approaches 0", "seven times eight": each is one
call of a tool that answers in milliseconds, where the model took 16-60 s and was sometimes wrong.

Only the *shape* of the request is read here (which operation, which variable, which bounds); the
formula itself is passed as text to the worker pool, whose restricted parser decides whether it
is a formula at all. When it is not (or the computation fails), the caller falls back to the
experts, so a false match costs a few milliseconds, never a wrong answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sme_mcp.experts.fast_path import arithmetic_expression

_LEAD = re.compile(
    r"^\s*(?:(?:hey|hi|ok|okay|so|please|quick question)[,:!]?\s+)*"
    r"(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?(?:tell\s+me\s+|help\s+me\s+)?|"
    r"i\s+(?:need|want)\s+(?:to\s+(?:know|find|get)\s+)?|tell\s+me\s+|help\s+me\s+)?"
    r"(?:what\s+is|what's|whats|what\s+are|find|compute|calculate|evaluate|determine|give\s+me|get|work\s+out)?"
    r"\s*(?:the\s+value\s+of\s+)?(?:the\s+|an?\s+)?",
    re.IGNORECASE,
)
_TAIL = re.compile(r"(?:\s*(?:please|thanks|thank you|for me))*[\s?!.]*$", re.IGNORECASE)
_VAR = r"([a-zA-Z])"
_WRT = rf"(?:(?:\s*,\s*|\s+)(?:with\s+respect\s+to|wrt|w\.r\.t\.?|in|for)\s+{_VAR})?"
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
# A formula: math characters, with words only where they are function names or single letters.
_FUNCTION_CALL = re.compile(r"\b(?:sin|cos|tan|cot|sec|csc|exp|log|ln|sinh|cosh|tanh|asin|acos|atan|abs)\s*\(")
_FORMULA_CHARS = re.compile(r"^[A-Za-z0-9_+\-*/^().,\s=<>\[\]!]+$")
_WORD = re.compile(r"[A-Za-z]{2,}")
_FORMULA_WORDS = frozenset((
    "sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "sinh", "cosh", "tanh", "exp", "log", "ln",
    "sqrt", "abs", "pi", "oo", "factorial", "binomial", "root", "arcsin", "arccos", "arctan", "atan2", "gcd",
    "lcm", "floor", "ceiling", "sign", "Abs", "inf", "infinity",
))


@dataclass(frozen=True)
class ExactRequest:
    """One SymPy operation a question asks for.

    Attributes:
        op: Worker-pool operation (`evaluate`, `differentiate`, ...).
        kwargs: Its arguments, formulas as the client wrote them.
        task: What is computed, in words, for the answer's reasoning.
        suffix: Appended to the result (" + C" for an antiderivative).
        real_only: The question asks for real solutions only.
    """

    op: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    task: str = ""
    suffix: str = ""
    real_only: bool = False


def _formula(text: str) -> str | None:
    """`text` as a formula the parser may accept, or None when it reads as prose."""
    text = text.strip().strip(",;:").strip()
    text = re.sub(r"^(?:f\s*\(\s*[a-z]\s*\)|y)\s*=\s*", "", text)  # "f(x) = x**2" -> "x**2"
    if not text or len(text) > 2000 or not _FORMULA_CHARS.match(text):
        return None
    if any(w.group(0) not in _FORMULA_WORDS for w in _WORD.finditer(text)):
        return None
    if not re.search(r"[A-Za-z0-9]", text):
        return None
    return text


def _order(word: str | None) -> int:
    if not word:
        return 1
    word = word.lower()
    if word in _ORDINALS:
        return _ORDINALS[word]
    digits = re.match(r"\d+", word)
    return int(digits.group(0)) if digits else 1


def _derivative(text: str) -> ExactRequest | None:
    patterns = (
        rf"^(?:(first|second|third|fourth|fifth|\d+(?:st|nd|rd|th))\s+)?derivative\s+of\s+(.+?){_WRT}$",
        rf"^(?:differentiate|diff)\s+(.+?){_WRT}$",
        rf"^d\s*/\s*d{_VAR}\s*(?:of\s+)?(.+)$",
    )
    for i, pattern in enumerate(patterns):
        m = re.match(pattern, text, re.IGNORECASE | re.DOTALL)
        if not m:
            continue
        if i == 0:
            order, expr, var = _order(m.group(1)), m.group(2), m.group(3)
        elif i == 1:
            order, expr, var = 1, m.group(1), m.group(2)
        else:
            order, expr, var = 1, m.group(2), m.group(1)
        formula = _formula(re.sub(r"\s+d[a-z]$", "", expr))
        if formula is None or "=" in formula:
            return None
        kwargs: dict[str, Any] = {"expression": formula, "order": order}
        if var:
            kwargs["variable"] = var
        nth = {1: "", 2: "second ", 3: "third "}.get(order, f"order-{order} ")
        return ExactRequest("differentiate", kwargs, f"the {nth}derivative of {formula}")
    return None


_BOUNDS = (
    rf"\s+from\s+(?:{_VAR}\s*=\s*)?(.+?)\s+to\s+(?:[a-zA-Z]\s*=\s*)?(.+)$",
    r"\s+(?:over|on)\s+(?:the\s+interval\s+)?\[\s*([^,\]]+?)\s*,\s*([^\]]+?)\s*\]$",
    r"\s+between\s+(.+?)\s+and\s+(.+)$",
)


def _integral(text: str) -> ExactRequest | None:
    m = re.match(
        r"^(?:(?:(?:indefinite|definite)\s+)?integral\s+of|antiderivative\s+of|anti-derivative\s+of|"
        r"integrate|(?:the\s+)?antiderivative:\s*integral\s+of)\s+(.+)$",
        text, re.IGNORECASE | re.DOTALL,
    )
    if not m:
        return None
    body = m.group(1).strip()
    lower = upper = None
    for pattern in _BOUNDS:
        b = re.search(pattern, body, re.IGNORECASE)
        if b:
            groups = [g for g in b.groups()]
            if len(groups) == 3:
                groups = groups[1:]
            lower, upper = _formula(groups[0]), _formula(groups[1])
            if lower is None or upper is None:
                return None
            body = body[: b.start()]
            break
    var = None
    wrt = re.search(rf"{_WRT}$", body, re.IGNORECASE)
    if wrt and wrt.group(1):
        var, body = wrt.group(1), body[: wrt.start()]
    differential = re.search(r"(?:\s+|\*|\)|^)d([a-z])\s*$", body)
    if differential:
        var = var or differential.group(1)
        body = body[: differential.start() + (1 if body[differential.start()] == ")" else 0)]
    formula = _formula(body)
    if formula is None or "=" in formula:
        return None
    kwargs: dict[str, Any] = {"expression": formula}
    if var:
        kwargs["variable"] = var
    if lower is not None:
        kwargs.update(lower=lower, upper=upper)
        return ExactRequest("integrate", kwargs, f"the integral of {formula} from {lower} to {upper}")
    return ExactRequest("integrate", kwargs, f"an antiderivative of {formula}", suffix=" + C")


def _solve(text: str) -> ExactRequest | None:
    patterns = (
        rf"^solve\s+(?:for\s+{_VAR}\s*[:,]?\s*)?(.+?)(?:\s+for\s+{_VAR})?(?:\.\s*give\s+all\s+real\s+solutions)?$",
        r"^(?:roots|zeros|zeroes|solutions)\s+of\s+(.+)()$",
        r"^every\s+real\s+([a-z])\s+with\s+(.+)$",
    )
    for i, pattern in enumerate(patterns):
        m = re.match(pattern, text, re.IGNORECASE | re.DOTALL)
        if not m:
            continue
        if i == 0:
            var, body, var2 = m.group(1), m.group(2), m.group(3)
            var = var or var2
        elif i == 1:
            var, body = None, m.group(1)
        else:
            var, body = m.group(1), m.group(2)
        parts = [p.strip() for p in re.split(r"\s*(?:,|;|\band\b)\s*(?=[^,;]*=)", body) if p.strip()]
        formulas = [_formula(p) for p in parts]
        if not formulas or any(f is None for f in formulas) or len(formulas) > 10:
            return None
        if any(_FUNCTION_CALL.search(f) for f in formulas if f):
            return None  # sin(x) = 0 has infinitely many solutions; SymPy's list would look complete
        if len(formulas) > 1 and not all("=" in f for f in formulas if f):
            return None
        kwargs: dict[str, Any] = {"equations": formulas}
        if var:
            kwargs["variables"] = [var]
        real = bool(re.search(r"\breal\b", text, re.IGNORECASE))
        return ExactRequest("solve", kwargs, ("the real solutions of " if real else "the solutions of ")
                            + "; ".join(f for f in formulas if f), real_only=real)
    return None


def _limit(text: str) -> ExactRequest | None:
    m = re.match(
        rf"^(?:limit\s+of\s+(.+?)\s+(?:as|when)\s+{_VAR}\s*(?:->|→|approaches|tends\s+to|goes\s+to)\s*(.+)|"
        rf"lim_?\s*\(?\s*{_VAR}\s*(?:->|→)\s*([^)\s]+)\s*\)?\s*(.+))$",
        text, re.IGNORECASE | re.DOTALL,
    )
    if not m:
        return None
    if m.group(1):
        expr, var, point = m.group(1), m.group(2), m.group(3)
    else:
        var, point, expr = m.group(4), m.group(5), m.group(6)
    point = re.sub(r"^(?:positive\s+)?infinity$", "oo", point.strip(), flags=re.IGNORECASE)
    point = re.sub(r"^negative\s+infinity$", "-oo", point, flags=re.IGNORECASE)
    formula, at = _formula(expr), _formula(point)
    if formula is None or at is None:
        return None
    return ExactRequest("limit", {"expression": formula, "variable": var, "point": at},
                        f"the limit of {formula} as {var} -> {at}")


def _rewrite(text: str) -> ExactRequest | None:
    m = re.match(r"^(expand|factor|factorise|factorize|simplify)\s*:?\s*(.+)$", text, re.IGNORECASE | re.DOTALL)
    if not m:
        return None
    op = {"factorise": "factor", "factorize": "factor"}.get(m.group(1).lower(), m.group(1).lower())
    formula = _formula(m.group(2))
    if formula is None or "=" in formula:
        return None
    return ExactRequest(op, {"expression": formula}, f"{op} {formula}")


def _matrix(text: str) -> ExactRequest | None:
    m = re.match(r"^(determinant|inverse|eigenvalues?)\s+of\s+(?:the\s+)?(?:matrix\s+)?(\[.+\])$", text,
                 re.IGNORECASE | re.DOTALL)
    if not m:
        return None
    op = {"determinant": "matrix_determinant", "inverse": "matrix_inverse"}.get(m.group(1).lower(),
                                                                                "matrix_eigenvalues")
    return ExactRequest(op, {"matrix": m.group(2)}, f"the {m.group(1).lower()} of {m.group(2)}")


# A number: digits with an optional decimal part; commas only as thousands separators ("1,000").
_NUMBER = r"(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)"


def _plain(number: str) -> str:
    return number.replace(",", "")


def _worded_arithmetic(text: str) -> ExactRequest | None:
    m = re.match(rf"^{_NUMBER}\s*(?:%|percent|per\s+cent)\s+of\s+{_NUMBER}$", text, re.IGNORECASE)
    if m:
        a, b = _plain(m.group(1)), _plain(m.group(2))
        return ExactRequest("evaluate", {"expression": f"{a}/100*{b}"}, f"{a}% of {b}")
    m = re.match(r"^(sum|product)\s+of\s+(.+)$", text, re.IGNORECASE)
    if m:
        numbers = re.split(r"\s*(?:,\s*and\s+|,\s+|\band\b)\s*", m.group(2).strip())
        if 2 <= len(numbers) <= 50 and all(re.fullmatch(_NUMBER, n) for n in numbers):
            joiner = " + " if m.group(1).lower() == "sum" else "*"
            expression = joiner.join(f"({_plain(n)})" if n.startswith("-") else _plain(n) for n in numbers)
            return ExactRequest("evaluate", {"expression": expression}, f"the {m.group(1).lower()} {expression}")
    m = re.match(rf"^(?:square\s+root|sqrt)\s+of\s+{_NUMBER}$", text, re.IGNORECASE)
    if m:
        return ExactRequest("evaluate", {"expression": f"sqrt({_plain(m.group(1))})"}, f"sqrt({m.group(1)})")
    m = re.match(rf"^{_NUMBER}\s+(squared|cubed)$", text, re.IGNORECASE)
    if m:
        power = 2 if m.group(2).lower() == "squared" else 3
        return ExactRequest("evaluate", {"expression": f"{_plain(m.group(1))}**{power}"}, f"{m.group(1)}**{power}")
    m = re.match(r"^(\d{1,4})\s*(?:!|factorial)$|^factorial\s+of\s+(\d{1,4})$", text, re.IGNORECASE)
    if m:
        n = m.group(1) or m.group(2)
        return ExactRequest("evaluate", {"expression": f"factorial({n})"}, f"{n}!")
    worded = _words_to_expression(text)
    if worded is not None:
        return ExactRequest("evaluate", {"expression": worded}, worded)
    return None


_UNIT_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
)
_TEN_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety"
_UNITS = {w: i for i, w in enumerate(_UNIT_WORDS.split(" "))}
_TENS = {w: 10 * (i + 2) for i, w in enumerate(_TEN_WORDS.split(" "))}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6}
_OPERATORS = (("multiplied by", "*"), ("divided by", "/"), ("to the power of", "**"), ("plus", "+"),
              ("minus", "-"), ("times", "*"), ("over", "/"), ("x", "*"))


def _number_words(words: list[str]) -> int | None:
    total, current = 0, 0
    if not words:
        return None
    for word in words:
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _SCALES:
            total += max(current, 1) * _SCALES[word]
            current = 0
        elif word == "and":
            continue
        elif re.fullmatch(r"\d+(?:\.\d+)?", word):
            return None if current or total else int(float(word)) if float(word).is_integer() else None
        else:
            return None
    return total + current


def _words_to_expression(text: str) -> str | None:
    """ "seven times eight" -> "7*8"; None unless every word is a number word or an operator."""
    text = text.lower().replace("-", " ")
    pattern = "|".join(re.escape(w) for w, _ in _OPERATORS)
    pieces = re.split(rf"\s+({pattern})\s+", f" {text.strip()} ")
    if len(pieces) < 3:
        return None
    out = []
    for i, piece in enumerate(pieces):
        piece = piece.strip()
        if i % 2:
            out.append(dict(_OPERATORS)[piece])
            continue
        if re.fullmatch(r"-?\d+(?:\.\d+)?", piece):
            out.append(piece)
            continue
        value = _number_words(piece.split())
        if value is None:
            return None
        out.append(str(value))
    return "".join(out)


_PARSERS = (_derivative, _integral, _solve, _limit, _rewrite, _matrix, _worded_arithmetic)


def exact_request(question: str) -> ExactRequest | None:
    """The one exact operation a question asks for, or None when it needs an expert.

    Args:
        question: The user's question, as written.

    Returns:
        The operation and its arguments; the formulas are not parsed here (the worker pool does
        that, and a formula it refuses sends the question on to the experts).

    Example:
        >>> exact_request("What is the derivative of x**3*sin(x)?").op
        'differentiate'
        >>> exact_request("What is 15% of 240?").kwargs
        {'expression': '15/100*240'}
        >>> exact_request("Write a function that adds two numbers") is None
        True
    """
    if not isinstance(question, str) or len(question) > 3000 or "\n\n" in question.strip():
        return None
    question = question.replace("×", "*").replace("÷", "/").replace("−", "-")
    bang = re.match(r"^\s*(?:what\s+is\s+|what's\s+|compute\s+|calculate\s+)?(\d{1,4})\s*!\s*\??\s*$", question,
                    re.IGNORECASE)
    if bang:
        return ExactRequest("evaluate", {"expression": f"factorial({bang.group(1)})"}, f"{bang.group(1)}!")
    expression = arithmetic_expression(question)
    if expression is not None:
        return ExactRequest("evaluate", {"expression": expression}, expression)
    text = _TAIL.sub("", _LEAD.sub("", question.strip(), count=1)).strip()
    text = re.sub(r"\s+", " ", text)
    for parse in _PARSERS:
        found = parse(text)
        if found is not None:
            return found
    return None
