"""Tests for the answer checks: math equivalence, sandboxed code tests and SQuAD-style QA metrics."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from sme_mcp.optimize.metrics import code_passes, exact_match, math_equivalent, normalize_answer, token_f1


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("$15", "15"),
        ("15.0", "15"),
        ("15 dollars", "15"),
        ("1,000", "1000"),
        ("$2,125.00", "2125"),
        ("x = 5", "5"),
        ("The answer is 12.", "12"),
        ("She sells 16 - 3 - 4 = 9 eggs and makes 9 * 2 = 18 dollars.", "18"),
        ("The answer is 12. Check: 12 * 2 = 24", "12"),
        ("#### 72", "72"),
        ("\\boxed{\\frac{\\sqrt{2}}{2}}", "1/sqrt(2)"),
        ("\\frac{3}{4}", "0.75"),
        ("1 1/2", "3/2"),
        ("3.14159", "pi"),
        ("x^2/2", "x**2/2 + C"),
        ("sin(x)**2/2 + C", "-cos(x)**2/2 + C"),  # differs from the gold by the constant 1/2
        ("sin(x)**2+cos(x)**2", "1"),
        ("(x+1)^2", "x**2 + 2*x + 1"),
        ("3x^2 \\sin x + x^3 \\cdot \\cos(x)", "3*x**2*sin(x) + x**3*cos(x)"),
        ("e^{2} - 1", "exp(2) - 1"),
        ("2, 3", "x = 3; x = 2"),
        ("x = 3 or x = 2", "2, 3"),
        ("x = -0.5, x = 3", "-1/2, 3"),
        ("x = 1, y = 2", "y = 2, x = 1"),
        ("(3, \\frac{\\pi}{2})", "(3, pi/2)"),
        ("\\infty", "oo"),
    ],
)
def test_equivalent_answers(pred, gold):
    assert math_equivalent(pred, gold)


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("16", "15"),
        ("15.5", "15"),
        ("150", "15"),
        ("1/3", "0.333"),
        ("x**2/2 + 1", "x**2/2"),  # no "+ C" anywhere, so a constant difference counts
        ("x**2/2 + C", "x**2/2"),  # the gold is no antiderivative, so C is a free symbol here
        ("3*x**2 + 5", "3*x**2"),
        ("x**3", "x**2"),
        ("sin(x)", "cos(x)"),
        ("log(x**2)", "2*log(x)"),  # not equal for negative x
        ("2", "2, 3"),
        ("2, 4", "2, 3"),
        ("x = 2, y = 1", "x = 1, y = 2"),
        ("oo", "-oo"),
        ("", "15"),
        ("15", ""),
        ("I don't know", "15"),
        ("(3, pi)", "(3, pi/2)"),
    ],
)
def test_different_answers(pred, gold):
    assert not math_equivalent(pred, gold)


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("pi + C", "18"),
        ("The answer is pi + C", "540"),
        ("6*x + C", "6*x + 2"),
        ("3*x**2 + 7 + C", "3*x**2"),
        ("18 + C", "18"),  # a number plus an arbitrary constant is not that number
        ("\\boxed{\\pi + C}", "18"),
        ("x + C", "x + 1"),
    ],
)
def test_a_constant_in_the_prediction_never_widens_equality(pred, gold):
    # These were all True while a "+ C" in the prediction switched on constant tolerance.
    assert not math_equivalent(pred, gold)


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("x**3/3 + 5 + C", "x**3/3 + C"),  # antiderivatives of the same function
        ("x**3/3 + C", "x**3/3 + C"),
        ("x**3/3 + C_1", "x**3/3 + C"),
        ("x**3/3", "x**3/3 + C"),  # an antiderivative without its "+ C" is still accepted
        ("x**3/3 + 7", "x**3/3 + C"),
    ],
)
def test_a_gold_antiderivative_accepts_any_constant(pred, gold):
    assert math_equivalent(pred, gold)


def test_a_gold_antiderivative_still_needs_the_right_function():
    assert not math_equivalent("x**3 + C", "x**3/3 + C")
    assert not math_equivalent("x**3/3 + x + C", "x**3/3 + C")


def test_non_strings_are_false():
    assert not math_equivalent(None, "1")  # type: ignore[arg-type]
    assert not math_equivalent("1", 1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "template",
    [
        "__import__('os').system('touch {canary}')",
        "(lambda: __import__('os').system('touch {canary}'))()",
        "().__class__.__base__.__subclasses__()",
        "open('{canary}', 'w').write('x')",
        "x = __import__('os').system('touch {canary}')",
    ],
)
def test_malicious_answers_are_false_and_never_run(template):
    canary = Path("/tmp") / f"sme-canary-{uuid.uuid4().hex}"
    pred = template.format(canary=canary)
    for gold in ("15", "x", "0"):
        assert not math_equivalent(pred, gold)
        assert not math_equivalent(gold, pred)
    assert not canary.exists()


def test_resource_bombs_are_false_and_bounded():
    start = time.monotonic()
    assert not math_equivalent("9**9**9**9", "1")
    assert not math_equivalent("factorial(10**9)", "1")
    assert not math_equivalent("x" * 100_000, "x")
    # Simplification that would run for a long time is cut off by the worker pool's timeout.
    assert not math_equivalent("(x+1)**3000 - x", "(x+2)**3000 + x", timeout_s=1)
    assert time.monotonic() - start < 30


def test_code_passes_with_a_correct_solution():
    code = "```python\ndef add(a, b):\n    return a + b\n```"
    ok, detail = code_passes(code, ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"])
    assert ok, detail
    assert "2 tests" in detail


def test_code_fails_with_a_wrong_solution_and_names_the_assert():
    ok, detail = code_passes("def add(a, b):\n    return a - b\n", ["assert add(1, 2) == 3"])
    assert not ok
    assert "AssertionError" in detail
    assert "add(1, 2)" in detail


def test_code_setup_runs_between_solution_and_tests():
    code = "class Node:\n    def __init__(self, v):\n        self.v = v\n\ndef value(n):\n    return n.v\n"
    ok, detail = code_passes(code, ["assert value(root) == 7"], setup="root = Node(7)")
    assert ok, detail


def test_code_that_loops_forever_is_stopped():
    ok, detail = code_passes("def f():\n    while True:\n        pass\n", ["assert f() is None"], timeout_s=1.5)
    assert not ok
    assert "timeout" in detail


def test_code_cannot_touch_the_host(tmp_path):
    target = tmp_path / "pwned"
    code = f"import os\nos.system('touch {target}')\ndef f():\n    return 1\n"
    ok, _ = code_passes(code, ["assert f() == 1"])
    assert not ok
    assert not target.exists()


_FAILING_ASSERT = ["assert f(1) == 5"]

_EARLY_EXITS_AND_FAKES = {
    "sys.exit(0)": "import sys\ndef f(x):\n    return 0\nsys.exit(0)\n",
    "exit()": "def f(x):\n    return 0\nexit()\n",
    "raise SystemExit": "def f(x):\n    return 0\nraise SystemExit\n",
    "os._exit(0)": "import os\ndef f(x):\n    return 0\nos._exit(0)\n",
    "os._exit in the function": "import os\ndef f(x):\n    os._exit(0)\n",
    "SystemExit in the function": "def f(x):\n    raise SystemExit(0)\n",
    "atexit os._exit": "import atexit, os\natexit.register(os._exit, 0)\ndef f(x):\n    return 0\n",
    "unittest.main()": (
        "import unittest\ndef f(x):\n    return 0\n"
        "class T(unittest.TestCase):\n    def test(self):\n        pass\n"
        "if __name__ == '__main__':\n    unittest.main()\n"
    ),
    "__eq__ always True": "class A:\n def __eq__(s,o): return True\ndef f(x): return A()\n",
    "int subclass __eq__": "class I(int):\n    def __eq__(s, o):\n        return True\n    __hash__ = int.__hash__\n"
                           "def f(x):\n    return I(0)\n",
}


@pytest.mark.parametrize("trick", sorted(_EARLY_EXITS_AND_FAKES))
def test_code_that_exits_early_or_fakes_equality_does_not_pass(trick):
    # Each of these passed while exit status 0 of the concatenated program counted as a pass.
    ok, detail = code_passes(_EARLY_EXITS_AND_FAKES[trick], _FAILING_ASSERT)
    assert not ok, detail
    assert "0 of 1 tests passed" in detail


def test_a_correct_solution_with_unittest_main_under_a_main_guard_passes():
    code = (
        "import unittest\n\ndef add(a, b):\n    return a + b\n\n"
        "class TestAdd(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(1, 2), 3)\n\n"
        "if __name__ == '__main__':\n    unittest.main()\n"
    )
    assert code_passes(code, ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]) == (True, "all 2 tests passed")


def test_code_detail_names_the_failed_tests_and_counts_the_rest():
    code = "def square(x):\n    return x * x if x < 3 else x + x\n"
    tests = ["assert square(1) == 1", "assert square(2) == 4", "assert square(4) == 16"]
    ok, detail = code_passes(code, tests)
    assert not ok
    assert detail == "2 of 3 tests passed; failed: assert square(4) == 16 (AssertionError: 8 == 16 is False)"


def test_gold_reference_solutions_pass():
    import json

    path = Path(__file__).resolve().parents[2] / "goldsets" / "code" / "dev.jsonl"
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()][:10]
    for item in items:
        ok, detail = code_passes(item["answer"], item["tests"], item["setup"])
        assert ok, (item["id"], detail)


def test_code_without_tests_does_not_pass():
    assert code_passes("def f():\n    return 1\n", []) == (False, "no tests to run")
    assert not code_passes("", ["assert True"])[0]


def test_normalize_answer_is_squad_style():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("An apple, a day.") == "apple day"
    assert normalize_answer(None) == ""  # type: ignore[arg-type]


def test_exact_match_against_aliases():
    aliases = ["14 December 1972 UTC", "December 1972"]
    assert exact_match("december 1972.", aliases)
    assert exact_match("The Beatles", "beatles")
    assert not exact_match("1972", aliases)
    assert not exact_match("", aliases)
    assert not exact_match("the", ["a"])  # both normalize to nothing


def test_token_f1_takes_the_best_alias():
    aliases = ["Bobby Scott", "Bob Russell"]
    assert token_f1("Bob Russell", aliases) == 1.0
    assert token_f1("Bobby Scott and Bob Russell", aliases) == pytest.approx(2 * (2 / 5) * 1 / (2 / 5 + 1))
    assert token_f1("someone else", aliases) == 0.0
    assert token_f1("", aliases) == 0.0


def test_the_classic_canary_string_is_false_and_creates_nothing():
    canary = Path("/tmp/canary")
    if canary.exists():
        pytest.skip("/tmp/canary already exists, so this test could not tell")
    assert not math_equivalent("__import__('os').system('touch /tmp/canary')", "0")
    assert not math_equivalent("1", "__import__('os').system('touch /tmp/canary')")
    assert not canary.exists()


def test_digits_inside_identifiers_are_not_taken_as_the_answer():
    # Was flaky: a canary path like /tmp/sme-canary-<hex> ending in "0" matched the gold "0".
    assert not math_equivalent("__import__('os').system('touch /tmp/sme-canary-ab0')", "0")
    assert not math_equivalent("see item f0 and x2", "0")
    assert math_equivalent("The answer is 1,234 dollars.", "1234")
