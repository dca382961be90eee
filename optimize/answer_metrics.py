"""Checks for the answer kinds declared experts score by: a choice letter, a number, a time of day.

Example:
    >>> choice_letter("The answer is (C) because ...", ["A) 1", "B) 2", "C) 3"])
    'C'
    >>> time_of_day("It is 7:05 pm there (the next day).")
    '19:05'
    >>> numbers_equal("about 3,141.6 m", "3141.6")
    True
"""

from __future__ import annotations

import math
import re

from sme_mcp.optimize.metrics import normalize_answer

_LETTER_ALONE = re.compile(r"^\W*\(?([A-J])\)?\W*$")
_LETTER_FIRST = re.compile(r"^\W*\(?([A-J])\)?\s*[.):\-]\s")
_LETTER_SAID = re.compile(r"\b(?:answer|option|choice)\s*(?:is|:)?\s*:?\s*\(?([A-J])\)?(?![A-Za-z])", re.I)
_OPTION_LINE = re.compile(r"^\s*\(?([A-J])\)?\s*[.):]\s*(.+?)\s*$", re.M)
_TIME = re.compile(r"(?<![\d:])(\d{1,2})(?:[:.h](\d{2}))?\s*([ap])\.?\s?m\b\.?|(?<![\d:])(\d{1,2})[:h](\d{2})(?![\d:])",
                   re.I)
_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")


def options_of(question: str) -> dict[str, str]:
    """The lettered options of a multiple-choice question ("A) text" lines)."""
    return {letter: text for letter, text in _OPTION_LINE.findall(question)}


def choice_letter(prediction: str, options: dict[str, str] | list[str] | None = None) -> str | None:
    """The option letter a prediction chooses: a bare letter, a leading "C)" or "the answer is C", else the
    one option whose text it gives. None when it chooses none, or several."""
    text = prediction.strip()
    for pattern in (_LETTER_ALONE, _LETTER_FIRST):
        m = pattern.match(text)
        if m:
            return m.group(1).upper()
    said = {m.upper() for m in _LETTER_SAID.findall(text)}
    if len(said) == 1:
        return said.pop()
    if isinstance(options, list):
        options = {letter: body for letter, body in (_OPTION_LINE.findall("\n".join(options)))}
    if options:
        norm = normalize_answer(text)
        same = [letter for letter, body in options.items() if normalize_answer(body) == norm]
        if len(same) == 1:
            return same[0]
    return None


def time_of_day(prediction: str) -> str | None:
    """The first time of day in a prediction as 24-hour "HH:MM" ("7:05 pm", "19:05", "7 PM"); None if none."""
    for m in _TIME.finditer(prediction):
        if m.group(3):  # 12-hour clock
            hour, minute = int(m.group(1)), int(m.group(2) or 0)
            if not 1 <= hour <= 12:
                continue
            hour = hour % 12 + (12 if m.group(3).lower() == "p" else 0)
        else:
            hour, minute = int(m.group(4)), int(m.group(5))
        if hour <= 23 and minute <= 59:
            return f"{hour:02d}:{minute:02d}"
    return None


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def numbers_equal(prediction: str, gold: str, rel_tol: float = 1e-6) -> bool:
    """True when the prediction's number (the whole answer, else its last number) equals the gold number."""
    want = _number(gold.strip())
    if want is None:
        return False
    got = _number(prediction.strip())
    if got is None:
        found = _NUMBER.findall(prediction)
        got = _number(found[-1]) if found else None
    return got is not None and math.isclose(got, want, rel_tol=rel_tol, abs_tol=1e-9)
