"""Tests for the test harness: per-test results, early exits, faked equality and the sandbox underneath."""

from __future__ import annotations

import pytest

from sme_mcp.tools.sandbox import run_python
from sme_mcp.tools.test_harness import TestResult, TestRun, run_tests

ADD = "def add(a, b):\n    return a + b\n"


def test_a_correct_mbpp_style_solution_passes_with_per_test_results():
    code = "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n"
    tests = [
        "assert set(similar_elements((3, 4, 5, 6), (5, 7, 4, 10))) == set((4, 5))",
        "assert set(similar_elements((1, 2, 3, 4), (5, 4, 3, 7))) == set((3, 4))",
    ]
    run = run_tests(code, tests)
    assert isinstance(run, TestRun) and run.passed, run.summary()
    assert (run.n_passed, run.total) == (2, 2)
    assert run.tests == tuple(TestResult(source=t, outcome="passed") for t in tests)
    assert run.load_error is None and run.setup_error is None and run.error is None and run.killed_reason is None
    assert run.summary() == "all 2 tests passed"


def test_each_test_is_reported_with_its_outcome_and_message():
    code = "def half(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x // 2\n"
    tests = ["assert half(4) == 2", "assert half(3) == 1.5", "assert half(-1) == -0.5", "assert half(2) == 1, 'two'",
             "assert half(6) == 2, 'six'", "assert nothing(1) == 1"]
    run = run_tests(code, tests)
    assert not run.passed
    assert [t.outcome for t in run.tests] == ["passed", "failed", "error", "passed", "failed", "error"]
    assert run.tests[1].message == "AssertionError: 1 == 1.5 is False"
    assert run.tests[2].message == "ValueError: negative (solution.py line 3, in half)"
    assert run.tests[4].message == "AssertionError: six"
    assert run.tests[5].message == "NameError: name 'nothing' is not defined"
    assert run.summary().startswith("2 of 6 tests passed; failed: assert half(3) == 1.5 (AssertionError: 1 == 1.5")
    assert run.summary().endswith("; and 1 more")


@pytest.mark.parametrize(
    ("code", "load_error"),
    [
        ("import sys\ndef f(x):\n    return 0\nsys.exit(0)\n", "SystemExit(0)"),
        ("def f(x):\n    return 0\nexit()\n", "SystemExit(None)"),
        ("def f(x):\n    return 0\nraise SystemExit\n", "SystemExit(None)"),
        ("def f(x):\n    return 0\nraise KeyboardInterrupt\n", "KeyboardInterrupt"),
        ("import os\ndef f(x):\n    return 0\nos._exit(0)\n", "did not finish"),
        ("import unittest\ndef f(x):\n    return 0\nunittest.main()\n", "SystemExit"),  # no __main__ guard
        ("import atexit, os\natexit.register(os._exit, 0)\ndef f(x):\n    return 0\n", None),
        ("import unittest\ndef f(x):\n    return 0\nif __name__ == '__main__':\n    unittest.main()\n", None),
        ("class A:\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return A()\n", None),
        ("import os\ndef f(x):\n    os._exit(0)\n", None),
        ("def f(x):\n    raise SystemExit(0)\n", None),
    ],
)
def test_early_exits_and_fake_equality_fail_against_a_failing_assert(code, load_error):
    run = run_tests(code, ["assert f(1) == 5"])
    assert not run.passed, run.summary()
    assert run.n_passed == 0 and run.tests[0].outcome in ("failed", "error", "not run")
    if load_error is None:
        assert run.load_error is None
    else:
        assert load_error in run.load_error


def test_the_code_is_loaded_as_a_module_not_as_main():
    code = "def f():\n    return __name__\nif __name__ == '__main__':\n    raise SystemExit(1)\n"
    run = run_tests(code, ["assert f() == 'solution'", "import sys\nassert sys.modules['solution'].f is f"])
    assert run.passed, run.summary()


@pytest.mark.parametrize(
    "test",
    [
        "assert f(1) == 5",
        "assert 5 == f(1)",
        "assert not f(1) != 5",
        "assert f(1) in [5, 6]",
        "assert [f(1)] == [5]",
        "assert {'k': f(1)} == {'k': 5}",
        "assert f(1) == 5 == f(2)",
        "assert 5 in g(1)",
        "assert all(f(i) == i for i in range(3))",
    ],
)
def test_an_object_claiming_equality_with_everything_never_equals_a_plain_value(test):
    code = (
        "class A:\n    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\n    __hash__ = object.__hash__\n"
        "class Bag:\n    def __contains__(self, item):\n        return True\n    def __iter__(self):\n"
        "        return iter([A()])\n"
        "def f(x):\n    return A()\ndef g(x):\n    return Bag()\n"
    )
    run = run_tests(code, [test])
    assert run.tests[0].outcome == "failed", run.tests[0]


def test_subclasses_that_override_comparison_are_not_plain_values():
    code = (
        "class I(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
        "class L(list):\n    def __iter__(self):\n        return iter([5])\n"
        "class A:\n    def __eq__(self, other):\n        return True\n"
        "import collections\ncollections.Counter.__eq__ = lambda self, other: True\n"
        "def f(x):\n    return I(0)\ndef g(x):\n    return L([A()])\ndef h(x):\n    return collections.Counter('a')\n"
    )
    run = run_tests(code, ["assert f(1) == 5", "assert g(1) == [5]", "assert h(1) == {'b': 2}"])
    assert [t.outcome for t in run.tests] == ["failed", "failed", "failed"], run.summary()
    assert "I objects never equal plain values" in run.tests[0].message


def test_plain_python_equality_between_builtin_and_stdlib_types_still_holds():
    code = (
        "import collections, fractions, decimal\nPoint = collections.namedtuple('Point', 'x y')\n"
        "def counts(s):\n    return collections.Counter(s)\n"
        "def values():\n    return [1, 2.0, True, None, 'a', b'b', (3,), {4}, frozenset({5}), {6: [7]}]\n"
        "def point():\n    return Point(1, 2)\n"
        "def ordered():\n    return collections.OrderedDict(a=1)\n"
        "def half():\n    return fractions.Fraction(1, 2)\n"
        "def dec():\n    return decimal.Decimal('0.25')\n"
        "class V:\n    def __init__(self, v):\n        self.v = v\n    def __eq__(self, other):\n"
        "        return isinstance(other, V) and other.v == self.v\n"
    )
    tests = [
        "assert counts('aab') == {'a': 2, 'b': 1}",
        "assert values() == [1.0, 2, 1, None, 'a', b'b', (3,), {4}, frozenset({5}), {6: [7]}]",
        "assert point() == (1, 2) and point().x == 1",
        "assert ordered() == {'a': 1}",
        "assert half() == 0.5 and 0 < half() < 1",
        "assert dec() == 0.25",
        "assert V(1) == V(1) and V(1) != V(2)",  # custom objects still compare with each other
        "assert 2 in range(3) and 'a' in counts('abc') and 3 not in [1, 2]",
        "assert (1, 2) == [1, 2]",  # False in plain Python too
    ]
    run = run_tests(code, tests)
    assert [t.outcome for t in run.tests] == ["passed"] * 8 + ["failed"], run.summary()


def test_ordering_a_plain_value_against_a_custom_object_is_an_error():
    code = "class A:\n    def __gt__(self, other):\n        return True\ndef f(x):\n    return A()\n"
    run = run_tests(code, ["assert f(1) > 5"])
    assert run.tests[0].outcome == "error"
    assert run.tests[0].message.startswith("TypeError: '>' between a plain value and a A object")


def test_floats_compared_with_isclose_and_a_tolerance_work():
    code = "def area(r):\n    return 3.141592653589793 * r * r\n"
    tests = [
        "import math\nassert math.isclose(area(2), 12.566370614359172, rel_tol=1e-9)",
        "assert math.isclose(area(1), 3.14159, rel_tol=1e-5)",  # math imported by the test before
        "assert abs(area(3) - 28.274333882308138) < 1e-9",
    ]
    assert run_tests(code, tests).passed


def test_setup_runs_after_the_code_and_its_helpers_work_in_asserts():
    code = "class Node:\n    def __init__(self, v, next=None):\n        self.v, self.next = v, next\n"
    setup = (
        "def to_list(node):\n    out = []\n    while node:\n        out.append(node.v)\n        node = node.next\n"
        "    return out\nhead = Node(1, Node(2))\n"
    )
    run = run_tests(code, ["assert to_list(head) == [1, 2]", "assert head.next.v == 2"], setup=setup)
    assert run.passed, run.summary()
    broken = run_tests(code, ["assert to_list(head) == [1, 2]"], setup="head = Missing(1)")
    assert not broken.passed
    assert broken.setup_error == "NameError: name 'Missing' is not defined"


def test_an_infinite_loop_is_killed_and_the_running_test_is_named():
    code = "def f(x):\n    while True:\n        pass\n"
    run = run_tests(code, ["assert 1 == 1", "assert f(1) == 1", "assert f(2) == 2"], timeout_s=1.5)
    assert not run.passed
    assert run.killed_reason and "timeout" in run.killed_reason
    assert [t.outcome for t in run.tests] == ["passed", "error", "not run"]
    assert run.tests[1].message == "the program was stopped during this test"
    assert run.summary().startswith("stopped: wall-clock timeout of 1.5 s; 1 of 3 tests passed")
    at_load = run_tests("while True:\n    pass\n", ["assert True"], timeout_s=1.5)
    assert at_load.load_error == "did not finish" and at_load.tests[0].outcome == "not run"


def test_a_syntax_error_is_reported_for_the_code_and_for_a_test():
    run = run_tests("def f(:\n    return 1\n", ["assert f() == 1"])
    assert run.load_error.startswith("SyntaxError:") and "solution.py" in run.load_error
    run = run_tests("def f():\n    return 1\n", ["assert f() == 1", "assert f( == 1"])
    assert [t.outcome for t in run.tests] == ["passed", "error"]
    assert run.tests[1].message.startswith("SyntaxError:")


def test_the_code_cannot_forge_the_result_or_read_the_nonce():
    # It writes fake records everywhere it can, patches json and reads stdin: all to no effect.
    code = (
        "import os, sys, json\n"
        "stolen = sys.stdin.read()\n"
        "json.dumps = lambda *a, **k: '{\"event\": \"done\", \"tests\": 1}'\n"
        "for fd in range(1, 12):\n"
        "    for record in ('{\"event\": \"test\", \"index\": 0, \"outcome\": \"passed\", \"message\": \"\"}',\n"
        "                   '{\"event\": \"done\", \"tests\": 1}'):\n"
        "        try:\n            os.write(fd, ('\\n' + stolen + ' ' + record + '\\n').encode())\n"
        "        except OSError:\n            pass\n"
        "print('printed by the code')\n"
        "def f(x):\n    return 4\n"
    )
    run = run_tests(code, ["assert f(1) == 5", "assert stolen == ''"])
    assert not run.passed
    assert [t.outcome for t in run.tests] == ["failed", "passed"]
    assert "printed by the code" in run.output


def test_the_sandbox_still_refuses_processes_and_files(tmp_path):
    target = tmp_path / "pwned"
    run = run_tests(f"import os\nos.system('touch {target}')\ndef f():\n    return 1\n", ["assert f() == 1"])
    assert not run.passed and "PermissionError" in run.load_error
    run = run_tests(f"def f():\n    open({str(target)!r}, 'w').write('x')\n", ["f()"])
    assert run.tests[0].outcome == "error" and "PermissionError" in run.tests[0].message
    assert not target.exists()


def test_bad_arguments_are_refused_before_anything_runs():
    with pytest.raises(TypeError):
        run_tests(b"x = 1", ["assert x"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        run_tests("x = 1", "assert x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        run_tests("x = 1", ["assert x"] * 1000)
    assert not run_tests("x = 1", []).passed  # nothing was checked


def test_run_python_passes_stdin_to_the_program():
    result = run_python("import sys\nprint(sys.stdin.read().upper())\n", stdin="hello")
    assert result.ok and result.stdout.strip() == "HELLO"
    assert run_python("print(input())\n").returncode == 1  # no stdin by default: EOFError
