"""Recognises questions that are plain arithmetic, so they skip the router and the LM entirely."""

from __future__ import annotations

import re

_LEAD = re.compile(
    r"^\s*(?:please\s+)?(?:what\s+is|what's|whats|compute|calculate|evaluate|simplify|how\s+much\s+is)\s+",
    re.IGNORECASE,
)
_ARITHMETIC = re.compile(r"^[0-9\s+\-*/^().]+$")
_OPERATOR = re.compile(r"\d\s*(?:\*\*|[+\-*/^])\s*[-(]*\s*\d")


def arithmetic_expression(question: str) -> str | None:
    """Returns the arithmetic expression a question asks for, or None if it is not plain arithmetic.

    >>> arithmetic_expression("What is 1/2 + 1/3?")
    '1/2 + 1/3'
    >>> arithmetic_expression("What is the derivative of x**2?") is None
    True
    """
    text = _LEAD.sub("", question.strip()).strip().rstrip("?=. ").strip()
    if len(text) > 500 or not _ARITHMETIC.match(text) or not _OPERATOR.search(text):
        return None
    return text
