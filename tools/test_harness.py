"""Runs a candidate solution against assert-style tests in the sandbox and reports each test's result.

Running ``candidate + setup + asserts`` as one script and calling exit status 0 a pass is easy to
game, on purpose or by accident: ``sys.exit(0)``, ``exit()``, ``raise SystemExit``, ``os._exit(0)``
or an ``atexit`` hook end the script before the asserts run, ``if __name__ == "__main__":
unittest.main()`` exits 0 after running no tests, and an object whose ``__eq__`` always returns True
satisfies ``assert f(1) == 5``. This module closes those holes with a constant harness program that
runs inside `sme_mcp.tools.sandbox.run_python` (the server never executes any of it):

* The harness reads a random nonce and the code/setup/tests (as JSON) from stdin before any
  candidate code runs, compiles everything up front, and moves the candidate's stdout to stderr.
* The candidate is executed as a module named ``solution`` (not ``__main__``), so ``if __name__ ==
  "__main__"`` blocks do not run. ``SystemExit`` and every other exception raised while loading it,
  running the setup or running a test are caught and recorded as errors.
* Each test runs separately and is reported as passed, failed (``AssertionError``) or error, with a
  short message (the comparison that was false, or the exception and where it was raised).
* Comparisons in the setup and tests (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not
  in``) are rewritten so that a *plain value* (numbers, strings, bytes, None, and lists, tuples,
  dicts, sets of plain values, including stdlib types such as ``Counter``, ``Fraction`` and
  ``Decimal``, and subclasses that keep the builtin comparison methods, e.g. named tuples) never
  equals anything that is not a plain value; ordering one against the other raises ``TypeError``.
  Between plain values Python's own rules apply (``1 == 1.0``, ``(1, 2) != [1, 2]``), and objects
  of other classes compare with each other as usual.
* Results go out through a file descriptor saved before the candidate loads, as lines tagged with the
  nonce, ending in a ``done`` line written after the last test; the harness then ends the process
  with ``os._exit`` so no candidate ``atexit`` hook runs. A run without the ``done`` line (the
  candidate called ``os._exit``, was killed or crashed the interpreter) passes nothing.

What it does NOT protect against: the candidate runs in the same interpreter as the harness, so code
written *deliberately* against this harness (walking stack frames with ``sys._getframe`` or tracing
to read the nonce, or to patch the harness's state) could forge a result. The harness snapshots the
builtins it uses and does not use ``json`` after the candidate loads, so monkey-patching those does
not help; the sandbox's own limits (network, files, processes, time, memory) apply throughout.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from sme_mcp.tools.sandbox import MAX_CODE_CHARS, run_python

MAX_TESTS = 200
MAX_MESSAGE_CHARS = 300
MAX_OUTPUT_TAIL = 2_000
_OUTPUT_CHARS = 100_000  # per stream: room for every result line, whatever the candidate prints

Outcome = Literal["passed", "failed", "error", "not run"]

# Runs as the sandbox's __main__ program. It is constant: the code and the tests arrive on stdin.
_HARNESS = r'''
import ast, builtins, collections, decimal, fractions, json, linecache, operator, os, sys

__builtins__ = dict(vars(builtins))  # functions defined below keep this copy, whatever the candidate patches

_MISSING = object()
_MRO = type.__dict__["__mro__"].__get__
_DICT = type.__dict__["__dict__"].__get__
_FLAGS = type.__dict__["__flags__"].__get__
_NAME = type.__dict__["__name__"].__get__
_HEAPTYPE = 1 << 9
_DUNDERS = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__", "__contains__")
_DICT_KEYS, _DICT_ITEMS = type({}.keys()), type({}.items())


def _lookup(cls, name):
    """What the interpreter finds for `name` on `cls` (its MRO), immune to metaclass tricks."""
    for klass in _MRO(cls):
        namespace = _DICT(klass)
        if name in namespace:
            return namespace[name]
    return _MISSING


def _signature(cls):
    return tuple(_lookup(cls, name) for name in _DUNDERS)


_SCALARS = (bool, int, float, complex, str, bytes, bytearray, type(None), range, fractions.Fraction,
            decimal.Decimal)
_SEQUENCES = (list, tuple, set, frozenset, collections.deque, _DICT_KEYS, _DICT_ITEMS)
_MAPPINGS = (dict, collections.OrderedDict, collections.defaultdict, collections.Counter)
_BASES = {cls: _signature(cls) for cls in _SCALARS + _SEQUENCES + _MAPPINGS}


_static_bases = {}  # static (C) types cannot change, so their answer is kept


def _plain_base(cls):
    """The builtin/stdlib type `cls` compares like, or None if it is not a plain-value type."""
    if cls in _static_bases:
        return _static_bases[cls]
    base = None
    for klass in _MRO(cls):
        expected = _BASES.get(klass)
        if expected is not None:
            base = klass if all(a is b for a, b in zip(_signature(cls), expected)) else None
            break
    if not _FLAGS(cls) & _HEAPTYPE:
        _static_bases[cls] = base
    return base


def _is_plain(value):
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        base = _plain_base(type(item))
        if base is None:
            return False
        if id(item) in seen:
            continue
        if base in _MAPPINGS:
            seen.add(id(item))
            for key, val in dict.items(item):
                stack.append(key)
                stack.append(val)
        elif base in _SEQUENCES:
            seen.add(id(item))
            stack.extend(base.__iter__(item))
    return True


_contains = operator.contains
_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
        ">=": operator.ge}
_last_false = [None]  # (left, op, right, note) of the latest comparison that came out False


def _type_name(value):
    return _NAME(type(value))


def _not_plain(value):
    return _type_name(value) + " objects never equal plain values"


def _compare_one(left, op, right):
    if op == "is":
        return left is right
    if op == "is not":
        return left is not right
    if op in ("in", "not in"):
        left_plain, right_plain = _is_plain(left), _is_plain(right)
        if right_plain and not left_plain:
            _last_false[0] = (left, op, right, _not_plain(left))
            return op == "not in"
        if left_plain and not right_plain:  # a custom container could claim to hold anything
            found = any(_compare_one(left, "==", member) is True for member in iter(right))
        else:
            found = _contains(right, left)
        result = found if op == "in" else not found
    else:
        left_plain, right_plain = _is_plain(left), _is_plain(right)
        if left_plain != right_plain:
            other = right if left_plain else left
            if op not in ("==", "!="):
                raise TypeError("'" + op + "' between a plain value and a " + _type_name(other) + " object")
            _last_false[0] = (left, op, right, _not_plain(other)) if op == "==" else None
            return op == "!="
        result = _OPS[op](left, right)
    if result is False:
        _last_false[0] = (left, op, right, None)
    return result


def _compare(left, ops, first, *rest):
    """A comparison chain `left op1 first op2 rest[0]() ...`, evaluated like Python does."""
    result = _compare_one(left, ops[0], first)
    for op, later in zip(ops[1:], rest):
        if not result:
            return result
        left = first
        first = later()
        result = _compare_one(left, op, first)
    return result


_OP_NAMES = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
             ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}


def _no_arguments():
    return ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                         defaults=[])


class _Guard(ast.NodeTransformer):
    def __init__(self, name):
        self.name = name

    def visit_Compare(self, node):
        self.generic_visit(node)
        ops = ast.Tuple([ast.Constant(_OP_NAMES[type(op)]) for op in node.ops], ast.Load())
        later = [ast.Lambda(_no_arguments(), c) for c in node.comparators[1:]]  # evaluated only when reached
        call = ast.Call(ast.Name(self.name, ast.Load()), [node.left, ops, node.comparators[0], *later], [])
        return ast.copy_location(call, node)


def _compiled(source, filename, guard_name=None):
    """The code object (comparisons guarded when `guard_name` is given), or the compile error's message."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # for tracebacks
    try:
        tree = ast.parse(source, filename)
        if guard_name is not None:
            tree = ast.fix_missing_locations(_Guard(guard_name).visit(tree))
        return compile(tree, filename, "exec")
    except BaseException as exc:
        return _describe(exc)


def _short(value, limit):
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value):
    try:
        return _short(repr(value), 80)
    except BaseException:
        return "<" + _type_name(value) + " object>"


def _where(tb):
    """Where in the candidate's code an exception was raised, if it was."""
    found = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == "solution.py":
            found = " (solution.py line " + str(tb.tb_lineno) + ", in " + code.co_name + ")"
        tb = tb.tb_next
    return found


def _describe(exc):
    name = _type_name(exc)
    try:
        if isinstance(exc, SystemExit):
            return "SystemExit(" + _show(exc.code) + "): the code tried to exit"
        text = str(exc)
        if isinstance(exc, AssertionError) and not text and _last_false[0] is not None:
            left, op, right, note = _last_false[0]
            text = _show(left) + " " + op + " " + _show(right) + " is False" + (" (" + note + ")" if note else "")
        message = name + (": " + text if text else "")
    except BaseException:
        message = name + ": <the message could not be shown>"
    return _short(message + _where(exc.__traceback__), 300)


_ESCAPES = {i: "\\u%04x" % i for i in range(32)}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\"})


def _encode(value):
    """JSON for the flat records below, without the json module (which the candidate could patch)."""
    if value is None or value is True or value is False:
        return {None: "null", True: "true", False: "false"}[value]
    if type(value) is int:
        return int.__repr__(value)
    if type(value) is str:
        return '"' + str.translate(value, _ESCAPES) + '"'
    return "{" + ",".join(_encode(k) + ":" + _encode(v) for k, v in dict.items(value)) + "}"


def _attempt(code, namespace):
    """Runs compiled code (or reports its compile error): ("passed" | "failed" | "error", message)."""
    if isinstance(code, str):
        return "error", code
    try:
        exec(code, namespace)  # safe: this program runs only in the sandbox child, never in the server
    except AssertionError as exc:
        return "failed", _describe(exc)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: an exit is no pass
        return "error", _describe(exc)
    return "passed", ""


def _run(nonce, payload, out_fd):
    write = os.write

    def emit(record):
        data = ("\n" + nonce + " " + _encode(record) + "\n").encode("utf-8", "replace")
        while data:
            data = data[write(out_fd, data):]

    # Everything is compiled before the candidate runs, so it cannot patch `ast` or `compile` first.
    guard_name = "_sme_compare_" + os.urandom(8).hex()
    candidate = _compiled(payload["code"], "solution.py")
    setup = _compiled(payload["setup"], "<setup>", guard_name)
    tests = [_compiled(source, "<test " + str(i + 1) + ">", guard_name) for i, source in enumerate(payload["tests"])]
    module = type(sys)("solution")
    module.__file__ = os.path.join(os.getcwd(), "solution.py")
    module.__dict__["__builtins__"] = builtins
    namespace = module.__dict__
    sys.modules["solution"] = module
    outcome, message = _attempt(candidate, namespace)
    emit({"event": "load", "ok": outcome == "passed", "message": message})
    namespace[guard_name] = _compare
    outcome, message = _attempt(setup, namespace)
    emit({"event": "setup", "ok": outcome == "passed", "message": message})
    for i, test in enumerate(tests):
        _last_false[0] = None
        namespace[guard_name] = _compare  # in case the code replaced it
        outcome, message = _attempt(test, namespace)
        emit({"event": "test", "index": i, "outcome": outcome, "message": message})
    emit({"event": "done", "tests": len(tests)})


def _main():
    chunks = []
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\n")
    nonce = head.decode("ascii").strip()
    payload = json.loads(body)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)  # the candidate reads nothing (the nonce is gone)
    os.close(devnull)
    out_fd = os.dup(1)  # results go here; what the candidate prints goes to stderr
    os.dup2(2, 1)
    status = 0
    try:
        _run(nonce, payload, out_fd)
    except BaseException as exc:
        status = 3
        os.write(2, ("test harness error: " + _describe(exc) + "\n").encode("utf-8", "replace"))
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(status)  # no atexit hook or thread of the candidate runs after the results


_main()
'''


@dataclass(frozen=True)
class TestResult:
    """How one test went.

    Attributes:
        source: The test's code, e.g. ``assert add(1, 2) == 3``.
        outcome: ``passed``; ``failed`` (an ``AssertionError``); ``error`` (any other exception,
            including ``SystemExit``, a syntax error in the test, or the run ending during it);
            ``not run`` (the run ended before it).
        message: Empty when it passed; else the false comparison or the exception, e.g.
            ``AssertionError: -1 == 3 is False`` or ``NameError: name 'f' is not defined``.
    """

    __test__ = False  # not a pytest test class

    source: str
    outcome: Outcome
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass(frozen=True)
class TestRun:
    """The outcome of running a candidate against its tests.

    Attributes:
        passed: The harness finished, the code loaded, the setup ran, and every test (at least
            one) passed.
        tests: One result per test, in the order given.
        load_error: Why loading the candidate failed (an exception, ``SystemExit``, a syntax
            error), or None.
        setup_error: Why the setup code failed, or None.
        error: Why the run did not finish normally (stopped, exited early, harness failure), or None.
        killed_reason: Set when the sandbox stopped the program (e.g. the wall-clock timeout).
        output: The end of what the program printed (stdout and stderr both end up here).
        duration_s: Wall-clock seconds the sandboxed run took.
    """

    __test__ = False  # not a pytest test class

    passed: bool
    tests: tuple[TestResult, ...]
    load_error: str | None = None
    setup_error: str | None = None
    error: str | None = None
    killed_reason: str | None = None
    output: str = ""
    duration_s: float = 0.0

    @property
    def n_passed(self) -> int:
        return sum(t.passed for t in self.tests)

    @property
    def total(self) -> int:
        return len(self.tests)

    def summary(self, max_failures: int = 3) -> str:
        """One line: ``all 3 tests passed`` or what went wrong, naming the first failed tests."""
        if self.passed:
            return f"all {self.total} test{'' if self.total == 1 else 's'} passed"
        parts = [p for p in (
            self.error,
            self.load_error and f"loading the code failed: {self.load_error}",
            self.setup_error and f"the setup failed: {self.setup_error}",
        ) if p]
        head = f"{self.n_passed} of {self.total} tests passed"
        failed = [t for t in self.tests if t.outcome in ("failed", "error")]
        if failed:
            shown = "; ".join(f"{_clip(t.source, 200)} ({t.message})" for t in failed[:max_failures])
            more = f"; and {len(failed) - max_failures} more" if len(failed) > max_failures else ""
            head += f"; failed: {shown}{more}"
        return "; ".join([*parts, head])


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _records(stdout: str, nonce: str) -> list[dict]:
    tag = nonce + " "
    found = []
    for line in stdout.splitlines():
        start = line.find(tag)
        if start < 0:
            continue
        try:
            record = json.loads(line[start + len(tag) :])
        except ValueError:
            continue
        if isinstance(record, dict):
            found.append(record)
    return found


def _message(record: dict) -> str:
    message = record.get("message")
    return _clip(message, MAX_MESSAGE_CHARS) if isinstance(message, str) else ""


def run_tests(code: str, tests: list[str], setup: str = "", timeout_s: float = 10, memory_mb: int = 512) -> TestRun:
    """Runs ``code`` as a module, then ``setup``, then each test separately, in the sandbox.

    Args:
        code: The candidate solution (plain Python, no Markdown fences).
        tests: Test snippets, usually one ``assert`` each (MBPP's ``test_list``).
        setup: Code run after the candidate and before the tests, in the same namespace
            (MBPP's ``test_setup_code``).
        timeout_s: Wall-clock limit for the whole run.
        memory_mb: Address-space limit of the sandboxed process.

    Returns:
        A `TestRun` with one `TestResult` per test.

    Raises:
        TypeError: An argument is not a string (or ``tests`` not a list of strings).
        ValueError: The input is too large or a limit is out of range (see `run_python`).
    """
    if not isinstance(code, str) or not isinstance(setup, str):
        raise TypeError("code and setup must be strings")
    if not isinstance(tests, (list, tuple)) or not all(isinstance(t, str) for t in tests):
        raise TypeError("tests must be a list of strings")
    if len(tests) > MAX_TESTS:
        raise ValueError(f"{len(tests)} tests; the limit is {MAX_TESTS}")
    size = len(code) + len(setup) + sum(len(t) for t in tests)
    if size > MAX_CODE_CHARS:
        raise ValueError(f"code, setup and tests are {size} characters long; the limit is {MAX_CODE_CHARS}")
    nonce = secrets.token_hex(16)
    payload = json.dumps({"code": code, "setup": setup, "tests": list(tests)}, ensure_ascii=False)
    start = time.monotonic()
    result = run_python(_HARNESS, timeout_s=timeout_s, memory_mb=memory_mb, stdin=f"{nonce}\n{payload}",
                        max_output_chars=_OUTPUT_CHARS)
    records = _records(result.stdout, nonce)
    by_event: dict[str, dict] = {}
    outcomes: dict[int, tuple[Outcome, str]] = {}
    for record in records:
        event = record.get("event")
        if event == "test":
            index, outcome = record.get("index"), record.get("outcome")
            if type(index) is int and 0 <= index < len(tests) and outcome in ("passed", "failed", "error"):
                outcomes.setdefault(index, (outcome, _message(record)))
        elif event in ("load", "setup", "done"):
            by_event.setdefault(event, record)
    done = "done" in by_event and len(outcomes) == len(tests)

    error = None
    if not done:
        if result.killed_reason:
            error = f"stopped: {result.killed_reason}"
        elif result.returncode == 0:
            error = "the program ended before the tests finished (os._exit or similar)"
        else:
            error = f"the program ended before the tests finished (exit status {result.returncode})"
        tail = result.stderr.strip().splitlines()[-1:]
        if "test harness error" in result.stderr and tail:
            error += f"; {_clip(tail[0], MAX_MESSAGE_CHARS)}"

    def phase_error(name: str) -> str | None:
        record = by_event.get(name)
        if record is None:
            return None if done else "did not finish"
        return None if record.get("ok") is True else (_message(record) or "failed")

    results, running = [], not done and "setup" in by_event
    for i, source in enumerate(tests):
        if i in outcomes:
            outcome, message = outcomes[i]
        elif running:  # the run ended while this test was going on
            ended = "was stopped" if result.killed_reason else "ended"
            outcome, message, running = "error", f"the program {ended} during this test", False
        else:
            outcome, message = "not run", ""
        results.append(TestResult(source=source, outcome=outcome, message=message))
    load_error, setup_error = phase_error("load"), phase_error("setup")
    return TestRun(
        passed=done and load_error is None and setup_error is None and bool(tests)
        and all(r.passed for r in results),
        tests=tuple(results),
        load_error=load_error,
        setup_error=setup_error if load_error is None or setup_error != "did not finish" else None,
        error=error,
        killed_reason=result.killed_reason,
        output=result.stderr[-MAX_OUTPUT_TAIL:],
        duration_s=round(time.monotonic() - start, 3),
    )
