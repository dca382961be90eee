"""Tells symbolic math (a formula to differentiate, integrate, solve...) from word problems.

The math expert answers the two differently: symbolic questions need exact SymPy tools, while
on word problems the 1.5B model reasons better in plain chain of thought than through ReAct
tool calls (dev GSM8K items: see `MathExpert`).
"""

from __future__ import annotations

import re

_SYMBOLIC = re.compile(
    r"""
      \b(?:derivative|differentiate|antiderivative|integral|integrate|taylor|maclaurin)\b
    | \bd\s*/\s*d[a-z]\b | \blim\s*_ | \blimit\s+of\b
    | \bsolve\s+for\s+[a-z]\b
    | \b(?:simplify|factor|factorise|factorize|expand)\s*[:(]?\s*[a-z0-9(]*[a-z]\s*(?:\*\*|\^|[*+-])
    | \b(?:determinant|eigenvalues?|inverse)\s+of\s+(?:the\s+)?matrix\b
    | \b[a-z]\s*(?:\*\*|\^)\s*\(?-?\d             # x**2, x^3
    | \d\s*\*\s*[a-z]\b(?!\s*[a-z])               # 3*x
    | \b(?:sin|cos|tan|exp|log|ln|sqrt|asin|acos|atan|sinh|cosh|tanh)\s*\(
    | \b[a-z]\s*\(\s*[a-z]\s*\)\s*=                # f(x) =
    """,
    re.IGNORECASE | re.VERBOSE,
)


def is_symbolic(question: str) -> bool:
    """True when the question is about a formula rather than a story with numbers.

    >>> is_symbolic("Find the indefinite integral of x*sin(3*x) with respect to x.")
    True
    >>> is_symbolic("Joe caught 3 pounds of crawfish on Thursday and 4 times that on Friday. How many pounds?")
    False
    """
    return bool(_SYMBOLIC.search(question))
