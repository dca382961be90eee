"""Answer checks for the gold sets: QA overlap, code that passes its tests, and (from math_equivalence) math.

These run inside the server and optimizer processes on model output, so nothing here evaluates
text: code runs in `sme_mcp.tools.sandbox` under the test harness of `sme_mcp.tools.test_harness`,
and math answers are compared in `sme_mcp.optimize.math_equivalence`. Every check returns a plain
"no" on any error instead of raising.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Iterable

from sme_mcp.optimize.math_equivalence import (  # noqa: F401 - re-exported: the checks live together here
    DEFAULT_TIMEOUT_S,
    get_worker_pool,
    math_equivalent,
)
from sme_mcp.tools.markdown import strip_fences
from sme_mcp.tools.test_harness import run_tests

# ---------------------------------------------------------------------------------------------
# QA: SQuAD-style normalization, exact match and token F1
# ---------------------------------------------------------------------------------------------

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lowercases, drops punctuation and the articles a/an/the, and collapses whitespace (SQuAD)."""
    if not isinstance(text, str):
        return ""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _aliases(aliases: str | Iterable[str]) -> list[str]:
    if isinstance(aliases, str):
        return [aliases]
    return [a for a in aliases if isinstance(a, str)]


def exact_match(pred: str, aliases: str | Iterable[str]) -> bool:
    """True if the normalized prediction equals any normalized gold alias."""
    norm = normalize_answer(pred)
    return bool(norm) and any(norm == normalize_answer(a) for a in _aliases(aliases))


def token_f1(pred: str, aliases: str | Iterable[str]) -> float:
    """The best SQuAD token-overlap F1 between the prediction and any gold alias (0.0 to 1.0)."""
    pred_tokens = normalize_answer(pred).split()
    best = 0.0
    for alias in _aliases(aliases):
        gold_tokens = normalize_answer(alias).split()
        common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
        overlap = sum(common.values())
        if overlap:
            precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


# ---------------------------------------------------------------------------------------------
# Code: run the candidate and the gold asserts in the sandbox
# ---------------------------------------------------------------------------------------------

def code_passes(code: str, tests: list[str], setup: str = "", timeout_s: float = 10) -> tuple[bool, str]:
    """Runs ``code``, then ``setup``, then each of the ``tests`` in the sandboxed test harness.

    The code is loaded as a module (not ``__main__``), an early exit or a crash counts as a failure,
    and a custom object never equals a plain value in the tests (see `sme_mcp.tools.test_harness`).

    Args:
        code: The candidate solution (a Markdown code fence around it is removed).
        tests: Assert statements, e.g. MBPP's ``test_list``.
        setup: Code the tests need after the solution is defined (MBPP's ``test_setup_code``).
        timeout_s: Wall-clock limit for the whole run.

    Returns:
        (passed, detail): detail is ``all 3 tests passed`` or says what failed, e.g.
        ``2 of 3 tests passed; failed: assert f(2) == 4 (AssertionError: 3 == 4 is False)``.
    """
    if not isinstance(code, str) or not code.strip():
        return False, "no code"
    if not tests:
        return False, "no tests to run"
    try:
        run = run_tests(strip_fences(code), list(tests), setup or "", timeout_s=timeout_s)
    except (TypeError, ValueError) as exc:
        return False, f"not run: {exc}"
    return run.passed, run.summary()
