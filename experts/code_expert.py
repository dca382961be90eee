"""`VerifiedCodeExpert`: writes code, runs it against tests in the sandbox, repairs it, and says how it went.

The tests come from the question (``assert`` lines, doctests, examples such as ``f(2) -> 4``); the
server only parses them (regular expressions and `ast`, never ``exec``). Every run of code happens
in `sme_mcp.tools.sandbox` through `sme_mcp.tools.test_harness.run_tests`.

Why not `dspy.Refine` or `dspy.BestOfN`: both re-run the whole module at temperature 1.0 from the
first attempt on, so the greedy answer is never tried, and neither shows the module the failed
test (Refine adds an LM call per attempt for generic advice instead). Here the first write is
greedy, each repair sees the failing assert, and fresh samples at temperature 0.7 (BestOfN's idea with the
question's tests as the reward) are tried only when repairs stall, one at a time until one passes.
"""

from __future__ import annotations

import ast
import builtins
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import dspy

from sme_mcp.experts.answer import Verification
from sme_mcp.experts.signatures import ExplainCode, RepairCode, WriteChecks, WriteCode
from sme_mcp.tools.markdown import strip_fences
from sme_mcp.tools.sandbox import run_python
from sme_mcp.tools.test_harness import TestRun, run_tests

MAX_TESTS = 20
MAX_CHECKS = 3
# 3 asserts fit in far fewer tokens; without a cap, 4 of 50 checks calls ran on to the 1024-token limit (77-91 s
# each, bench/results/code_no_tests.json), and only the first MAX_CHECKS asserts are used anyway.
CHECKS_MAX_TOKENS = 256
MAX_LM_CALLS = 4  # each call costs 5-15 s on the local model
ALTERNATIVE_TEMPERATURE = 0.7

# -- what kind of question ---------------------------------------------------------------------------

_FENCED = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n(.*?)```", re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
_EXPLAIN = re.compile(
    r"\b(?:explain|describe what|walk me through"
    r"|what (?:does|do|will|would)\b[^?\n]*?\b(?:do|print|output|return|produce|mean)"
    r"|how (?:does|do) (?:this|these|that|the following)\b[^?\n]*?\bwork"
    r"|what(?: is|'s) (?:the )?(?:output|result|value) of|what (?:gets|is) printed)\b",
    re.IGNORECASE,
)
_WRITE = re.compile(r"\b(?:write|implement|create|generate|fix|rewrite|refactor|complete|make)\b", re.IGNORECASE)


def _prose(question: str) -> str:
    """The question without its fenced code blocks."""
    return _FENCED.sub(" ", question)


def is_explanation_question(question: str) -> bool:
    """True for questions about existing code ("what does this print?", "explain ...") rather than requests for code.

    The rule: the prose (fenced code removed) asks to explain or what something does/prints/returns, and does
    not ask to write, fix or change anything.
    """
    prose = _prose(question)
    return bool(_EXPLAIN.search(prose)) and not _WRITE.search(prose)


def _is_code(text: str) -> bool:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, (ast.Name, ast.Constant)))
               for node in tree.body)


def code_in(question: str, max_lines: int = 40) -> str:
    """The code a question is about: its fenced blocks, else the longest run of lines that is Python, else the
    longest inline snippet (in backticks, or a call such as ``print(2**10)``); empty if there is none."""
    fenced = [block.strip("\n") for block in _FENCED.findall(question) if block.strip()]
    if fenced:
        return "\n\n".join(fenced)
    lines = question.splitlines()[:max_lines]
    best = ""
    for start in range(len(lines)):
        for end in range(len(lines), start, -1):
            if end - start <= best.count("\n") + 1:
                break
            chunk = "\n".join(lines[start:end]).strip()
            if chunk and _is_code(chunk):
                best = chunk
                break
    if best:
        return best
    inline = [snippet for snippet in [*_INLINE.findall(question), *(src for src, _ in _calls(question))]
              if _is_code(snippet)]
    return max(inline, key=len) if inline else ""


# -- tests from the question ------------------------------------------------------------------------------


def _has_call(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) for n in ast.walk(node))


def _assert_line(line: str) -> str | None:
    """The line as a normalised one-line ``assert`` that calls something, or None."""
    text = re.sub(r"^\s*(?:>>>|\.\.\.)?\s*", "", line).rstrip()
    if not text.startswith("assert"):
        return None
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert) or not _has_call(tree.body[0].test):
        return None
    return text


def asserts_in(text: str) -> list[str]:
    """The one-line ``assert`` statements in a text (including ``>>> assert ...``) that call a function."""
    return [test for line in text.splitlines() if (test := _assert_line(line))]


def _doctests(text: str) -> Iterator[str]:
    """``>>> f(2)`` followed by ``4`` becomes ``assert f(2) == 4``; ``>>> print(x)`` then ``4``: ``str(x) == '4'``."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        match = re.match(r"\s*>>>\s?(.*)$", line)
        expected = lines[i + 1].strip()
        if not match or not expected or expected.startswith((">>>", "...")):
            continue
        try:
            expr = ast.parse(match.group(1).strip(), mode="eval").body
        except (SyntaxError, ValueError):
            continue
        if _is_print(expr):
            yield f"assert str({ast.unparse(expr.args[0])}) == {expected!r}"  # type: ignore[attr-defined]
        elif _has_call(expr) and _literal_prefix(expected) == (expected, ""):
            yield f"assert {ast.unparse(expr)} == {expected}"


def _is_print(expr: ast.AST) -> bool:
    return (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "print"
            and len(expr.args) == 1 and not expr.keywords)


def _literal_prefix(text: str) -> tuple[str, str] | None:
    """The longest Python literal at the start of ``text`` and what follows it, e.g. ``("4", " and f(3)...")``."""
    text = text.strip()[:300]
    for end in range(len(text), 0, -1):
        chunk, after = text[:end].rstrip(), text[end:]
        cut_token = after[:1].isalnum() or after[:1] in ("_", "(", "[") or (after[:1] == "." and after[1:2].isdigit())
        if not chunk or chunk.endswith(".") or cut_token:
            continue
        try:
            node = ast.parse(chunk, mode="eval").body
            ast.literal_eval(node)
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(node, ast.Tuple) and not chunk.startswith("("):
            continue  # "5, and ..." or "5, 6": a list of examples, not a tuple
        return chunk, after
    return None


def _calls(text: str) -> Iterator[tuple[str, int]]:
    """Each ``name(...)`` with balanced parentheses in ``text``: (the call's source, where it ends)."""
    for match in re.finditer(r"(?<![\w.])[A-Za-z_]\w*\(", text):
        depth, quote, i = 0, "", match.end() - 1
        while i < len(text):
            ch = text[i]
            if quote:
                quote = "" if ch == quote and text[i - 1] != "\\" else quote
            elif ch in "'\"":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    yield text[match.start() : i + 1], i + 1
                    break
            elif ch == "\n":
                break
            i += 1


def _literal_call(source: str) -> bool:
    """A call of a plain name with literal arguments only, e.g. ``f(2, 'a')``."""
    try:
        call = ast.parse(source, mode="eval").body
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
            return False
        for arg in [*call.args, *(k.value for k in call.keywords)]:
            ast.literal_eval(arg)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return False
    return True


_SAYS = re.compile(
    r"\s*(?:(?:should|must|will)\s+(?:return|give|be|equal|output|yield|evaluate\s+to)\b|returns?\b|gives?\b"
    r"|yields?\b|outputs?\b|evaluates\s+to\b|equals?\b|is\b|->|=>|→|==)\s*:?",
    re.IGNORECASE,
)
_RETURNS_FOR = re.compile(
    r"\b(?:(?:should|must|will)\s+return|returns?|gives?|outputs?)\s+(?P<value>[^\n]+?)\s+"
    r"(?:for|when\s+given|given|on)\s+(?:(?:the\s+|an?\s+)?input(?:\s+of)?\s+|[a-z]\s*=\s*)?(?P<arg>[^\n]+)",
    re.IGNORECASE,
)
_DEF = re.compile(r"\bdef\s+([A-Za-z_]\w*)\s*\(|\bfunction\s+(?:called\s+|named\s+)?`?([A-Za-z_]\w*)`?")
_MORE_ARGS = re.compile(r"\s*(?:,|and)\s*[-\d'\"\[({]")


def _function_name(prose: str) -> str | None:
    """The function a question asks for: ``def f(``, "function f", or the first non-builtin ``f(...)``."""
    match = _DEF.search(prose)
    if match:
        return match.group(1) or match.group(2)
    return next((src.split("(")[0] for src, _ in _calls(prose) if not hasattr(builtins, src.split("(")[0])), None)


def _examples(prose: str) -> Iterator[str]:
    """``f(2) -> 4``, ``f(2) should return 4``, ``f(2) == 4`` and "returns 4 for 2" as asserts."""
    for source, end in _calls(prose):
        said = _SAYS.match(prose, end)
        if said is None or not _literal_call(source):
            continue
        found = _literal_prefix(prose[said.end() :].split("\n", 1)[0])
        if found is not None:
            yield f"assert {source} == {found[0]}"
    name = _function_name(prose)
    if name is None:
        return
    for match in _RETURNS_FOR.finditer(prose):
        value, arg = _literal_prefix(match.group("value")), _literal_prefix(match.group("arg"))
        if value is None or value[1].strip() or arg is None or _MORE_ARGS.match(arg[1]):
            continue  # not literals, or several arguments whose grouping is unclear
        yield f"assert {name}({arg[0]}) == {value[0]}"


def tests_from_question(question: str) -> list[str]:
    """Tests a question states: ``assert`` lines, doctests (``>>> f(2)`` then ``4``) and examples in prose
    (``f(2) -> 4``, "f(2) should return 4", "returns 4 for 2"), as assert statements, without duplicates.

    Nothing is executed: the text is matched with regular expressions and parsed with `ast`.
    """
    found, seen = [], set()
    prose = "\n".join(line for line in _prose(question).splitlines()
                      if not re.match(r"\s*(?:>>>|assert\b)", line))
    for test in [*asserts_in(question), *_doctests(question), *_examples(prose)]:
        try:
            key = ast.unparse(ast.parse(test))
        except (SyntaxError, ValueError):
            continue
        if key not in seen:
            seen.add(key)
            found.append(test)
    return found[:MAX_TESTS]


def _defined_names(code: str) -> set[str] | None:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _called_names(test: str) -> set[str]:
    return {n.func.id for n in ast.walk(ast.parse(test)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def _calls_one_of(test: str, names: set[str]) -> bool:
    return bool(_called_names(test) & names)


def _folded(name: str) -> str:
    """A name without case and underscores: ``Foo_Bar`` and ``foobar`` fold alike."""
    return name.replace("_", "").lower()


def align_names(code: str, tests: list[str]) -> str:
    """The code with an alias line for each function the tests call under a slightly different name.

    Small models often write ``check_occurrences`` when the question's test calls ``check_occurences``, or
    change a name's case: the logic may be right and only the name fails. A test's name that the code does not
    define gets ``name = defined`` when exactly one defined function is that name up to case and underscores,
    or is close to it (difflib ratio >= 0.85). Nothing is run: names are read with `ast`.

    Example:
        >>> align_names("def check_occurrences(x):\\n    return x", ["assert check_occurences(1) == 1"])
        'def check_occurrences(x):\\n    return x\\n\\ncheck_occurences = check_occurrences  # the name the tests call'
    """
    import difflib

    defined = _defined_names(code)
    if not defined:
        return code
    wanted = sorted({name for test in tests for name in _called_names(test)} - defined - set(dir(builtins)))
    aliases = []
    for name in wanted:
        same = [d for d in defined if _folded(d) == _folded(name)]
        close = same or [d for d in defined if difflib.SequenceMatcher(None, d.lower(), name.lower()).ratio() >= 0.85]
        if len(close) == 1:
            aliases.append(f"{name} = {close[0]}  # the name the tests call")
    return code if not aliases else code.rstrip("\n") + "\n\n" + "\n".join(aliases)


def _code_of(pred: Any) -> str:
    """The code a write or repair returned; when its `code` field is empty, the first fenced block elsewhere."""
    code = strip_fences(str(getattr(pred, "code", "") or ""))
    if code:
        return code
    for name in ("explanation", "reasoning"):
        text = str(getattr(pred, name, "") or "")
        block = _FENCED.search(text)
        if block and _is_code(block.group(1)):
            return block.group(1).strip()
    return ""


# -- running and reporting ----------------------------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _failure_signature(run: TestRun) -> tuple[Any, ...]:
    return (run.load_error, run.setup_error, run.error,
            tuple((t.source, t.outcome, t.message) for t in run.tests if not t.passed))


def failure_report(run: TestRun, tests_by_expert: bool = False) -> str:
    """What a failed run shows, for the repair predictor: errors first, then each failed test and its message."""
    lines = [text for text in (
        run.load_error and f"Loading the code failed: {run.load_error}",
        run.setup_error and f"The setup failed: {run.setup_error}",
        run.error,
    ) if text]
    if any(t.outcome == "failed" for t in run.tests):
        lines.append("A message such as `3 == 4 is False` shows both sides of the test's comparison as evaluated.")
    for test in run.tests:
        if test.outcome in ("failed", "error"):
            lines.append(f"{test.outcome.upper()}: {test.source}  ->  {test.message}")
    passed = [t.source for t in run.tests if t.passed]
    if passed:
        lines.append("Passed: " + "; ".join(_clip(s, 150) for s in passed[:3]))
    if (run.load_error or run.error) and run.output.strip():
        lines.append("Output: " + _clip(run.output[-600:], 600))
    if tests_by_expert:
        lines.append("These tests were written by the expert, not given: if a test contradicts the question, "
                     "follow the question.")
    return "\n".join(lines)


@dataclass
class Attempt:
    """One version of the code and how it did."""

    kind: Literal["write", "repair", "alternative"]
    pred: Any
    code: str
    run: TestRun | None
    trace: list[Any] = field(default_factory=list)

    @property
    def score(self) -> tuple[bool, int]:
        return (False, -1) if self.run is None else (self.run.passed, self.run.n_passed)


def _stalled(best: Attempt, tests: list[str]) -> bool:
    """Whether the best version so far is worth another sample: it failed its tests, or there are tests and it has
    no code at all (an empty field, a reply cut off)."""
    return best.run is not None and not best.run.passed or not best.code and bool(tests)


class VerifiedCodeExpert(dspy.Module):
    """Writes Python code, runs it against tests in the sandbox, repairs it from the failures, and returns the
    version that passed most tests with a `Verification` saying what was run and how it came out.

    The tests are those the question states (see `tests_from_question`); a question without any gets 2-3
    quick checks written by the expert (`write_checks`), and the verification says so. A failed run goes to
    `repair` with the failed asserts, up to `repair_attempts` times; when repairs stall (the same failure
    again, or no budget left) fresh writes at temperature 0.7 are tried, up to `alternatives` of them, until one
    passes. At most `max_lm_calls` LM calls are made per question, and at most `max_lm_calls_self_checked` when
    the checks are the expert's own (they are as fallible as the code: with 2, a failed own check is reported,
    not repaired). Questions about existing code ("what does this print?") are answered in prose by `explain`,
    with the snippet's real output from the sandbox, and carry no new code (`code` is empty, `snippet` is the code
    the question is about).

    The prediction has `code`, `explanation`, `reasoning`, `verification` (an `experts.answer.Verification`),
    `attempts` (kind, tests passed, tests run, per version) and `lm_calls`. Only the predictor calls that
    produced the returned code are left in the DSPy trace, so an optimizer bootstraps demos from successful
    writes and repairs, not from the failed versions.

    Args:
        repair_attempts: Repairs allowed after a failed run (the `code_repair_attempts` setting, whose default
            this is).
        alternatives: Fresh writes sampled at temperature 0.7 when repairs stall, one at a time until one passes
            the tests (the `code_alternatives` setting, whose default this is); 0: none.
        max_lm_calls: Upper bound on LM calls per question.
        max_lm_calls_self_checked: Upper bound on LM calls when the question gives no tests, so the checks are
            the expert's own (the `code_calls_without_tests` setting): 2 writes and checks the code and reports
            what the checks showed; 3 also allows one repair; 4 the full budget. None: `max_lm_calls`.
        timeout_s: Wall-clock limit of each sandboxed run.
        reasoning: Whether `write` and `repair` reason step by step before the code (ChainOfThought) or
            write it at once (Predict); the `code_reasoning` setting.
        reasoning_without_tests: The same choice for the write (and alternative) of a question that gives no
            tests, when it differs from `reasoning` (`write_untested` then does that write); the
            `code_reasoning_without_tests` setting. None: as `reasoning`.

    Example:
        >>> expert = VerifiedCodeExpert()
        >>> with dspy.context(lm=lm):  # doctest: +SKIP
        ...     pred = expert(question="Write is_even(n).\\nassert is_even(4) == True")
        >>> pred.verification.outcome, pred.verification.tests_run  # doctest: +SKIP
        ('passed', 1)
    """

    def __init__(self, repair_attempts: int = 0, alternatives: int = 3, max_lm_calls: int = MAX_LM_CALLS,
                 timeout_s: float = 10.0, reasoning: bool = True, max_lm_calls_self_checked: int | None = None,
                 reasoning_without_tests: bool | None = None) -> None:
        super().__init__()
        # With reasoning, `write` has CodeExpert's name and shape (ChainOfThought(WriteCode)): its programs load.
        # Without, the model writes the code straight away: on this hardware the reasoning is most of the tokens
        # an answer waits for (bench/code_verify.py measures both).
        make = dspy.ChainOfThought if reasoning else dspy.Predict
        self.write = make(WriteCode)
        self.write_untested: Any = None
        if reasoning_without_tests is not None and reasoning_without_tests != reasoning:
            # Its own predictor: demos of writes that reason do not fit a write that does not, and vice versa.
            self.write_untested = (dspy.ChainOfThought if reasoning_without_tests else dspy.Predict)(WriteCode)
        self.repair = make(RepairCode)
        self.reasoning = reasoning
        self.write_checks = dspy.Predict(WriteChecks)
        self.explain = dspy.Predict(ExplainCode)
        self.repair_attempts = repair_attempts
        self.alternatives = alternatives
        self.max_lm_calls = max_lm_calls
        self.max_lm_calls_self_checked = max_lm_calls_self_checked or max_lm_calls
        self.timeout_s = timeout_s

    def forward(self, question: str) -> dspy.Prediction:
        if is_explanation_question(question):
            return self._explain(question)
        return self._write(question)

    # -- writing ------------------------------------------------------------------------------------

    def _call(self, predictor: Any, **kwargs: Any) -> tuple[Any, list[Any]]:
        """Runs one predictor with its own trace, so the caller decides which calls the outer trace keeps."""
        with dspy.context(trace=[]):
            pred = predictor(**kwargs)
            trace = list(dspy.settings.trace or [])
        return pred, trace

    def _run(self, code: str, tests: list[str]) -> TestRun | None:
        if not tests or not code.strip():
            return None
        try:
            return run_tests(code, tests, timeout_s=self.timeout_s)
        except (TypeError, ValueError):  # too large for the sandbox
            return None

    def _attempt(self, kind: Literal["write", "repair", "alternative"], predictor: Any, tests: list[str],
                 **kwargs: Any) -> Attempt:
        pred, trace = self._call(predictor, **kwargs)
        code = align_names(_code_of(pred), tests)
        return Attempt(kind, pred, code, self._run(code, tests), trace)

    def _try(self, kind: Literal["write", "repair", "alternative"], predictor: Any, tests: list[str],
             **kwargs: Any) -> Attempt | None:
        """An attempt, or None when the LM's reply could not be parsed (the versions so far are kept)."""
        from dspy.utils.exceptions import AdapterParseError

        try:
            return self._attempt(kind, predictor, tests, **kwargs)
        except AdapterParseError:
            return None

    def _write(self, question: str) -> dspy.Prediction:
        from dspy.utils.exceptions import AdapterParseError

        started = time.monotonic()
        tests = tests_from_question(question)
        given = bool(tests)
        # Checks the expert wrote itself are as fallible as its code: repairs chasing them cost 20-40 s each.
        budget = self.max_lm_calls if given else min(self.max_lm_calls, self.max_lm_calls_self_checked)
        writer = self.write_untested if self.write_untested is not None and not given else self.write
        first = self._try("write", writer, tests, question=question) or Attempt(
            "write", dspy.Prediction(code="", explanation=""), "", None)  # an unparsable reply: the alternative may do
        attempts, calls, checks_trace = [first], 1, []
        if not given and first.code and calls < budget:
            calls += 1
            try:
                checks, checks_trace = self._call(self.write_checks, question=question, code=first.code,
                                                  config={"max_tokens": CHECKS_MAX_TOKENS})
            except AdapterParseError:
                checks = dspy.Prediction(checks="")
            names = _defined_names(first.code)
            tests = [t for t in asserts_in(strip_fences(str(checks.checks or "")))
                     if names is None or _calls_one_of(t, names)][:MAX_CHECKS]
            first.run = self._run(first.code, tests)

        seen = {_failure_signature(first.run)} if first.run else set()
        repairs = 0
        while (attempts[-1].run is not None and not attempts[-1].run.passed
               and repairs < self.repair_attempts and calls < budget):
            last = attempts[-1]
            calls, repairs = calls + 1, repairs + 1
            repaired = self._try("repair", self.repair, tests, question=question, previous_code=last.code,
                                 failure=failure_report(last.run, tests_by_expert=not given))  # type: ignore[arg-type]
            if repaired is None:
                break
            attempts.append(repaired)
            if repaired.run is None or repaired.run.passed:
                break
            signature = _failure_signature(repaired.run)
            if signature in seen or repaired.code in (a.code for a in attempts[:-1]):
                break  # stalled: the repair changed nothing the tests can see
            seen.add(signature)
        best = max(attempts, key=lambda a: a.score)  # the earliest version wins a tie
        stalled = _stalled(best, tests)
        sampled = 0
        while stalled and sampled < self.alternatives and calls < budget:
            calls, sampled = calls + 1, sampled + 1
            # Its own rollout: with DSPy's cache on, the same prompt and temperature would return the same sample.
            sample = self._try("alternative", writer, tests, question=question,
                               config={"temperature": ALTERNATIVE_TEMPERATURE, "rollout_id": sampled})
            if sample is not None:
                attempts.append(sample)
                best = max(attempts, key=lambda a: a.score)
                stalled = _stalled(best, tests)
        outer = dspy.settings.trace
        if outer is not None:  # only the calls behind the returned code: demos come from what worked
            outer.extend([*checks_trace, *best.trace] if best.run is not None and best.run.passed else best.trace)
        verification = self._verification(best, given, [a.kind for a in attempts], time.monotonic() - started)
        return dspy.Prediction(
            code=best.code, explanation=str(best.pred.explanation or ""),
            reasoning=getattr(best.pred, "reasoning", None), verification=verification, lm_calls=calls,
            attempts=[{"kind": a.kind, "tests_passed": a.run.n_passed if a.run else None,
                       "tests_run": a.run.total if a.run else None} for a in attempts],
        )

    @staticmethod
    def _verification(best: Attempt, given: bool, kinds: list[str], seconds: float) -> Verification:
        run = best.run
        if run is None:
            reason = "no code was written" if not best.code else "the question gave no tests and none could be written"
            return Verification(method="tests", outcome="unchecked", checked=f"nothing was run: {reason}",
                                seconds=round(seconds, 2))
        source = ("taken from the question" if given
                  else "written by the expert itself (the question gave none), so they may be wrong too")
        tried = f"; the best of {len(kinds)} versions ({', '.join(kinds)}) is returned" if len(kinds) > 1 else ""
        outcome = "passed" if run.passed else "partial" if run.n_passed else "failed"
        details = [text for text in (run.load_error and f"loading failed: {run.load_error}", run.error) if text]
        details += [f"{t.source} -> {t.message or t.outcome}" for t in run.tests if not t.passed]
        return Verification(
            method="tests", outcome=outcome,
            checked=f"ran the code in the sandbox against {run.total} test(s) {source}{tried}",
            tests_run=run.total, tests_passed=run.n_passed, details=[_clip(d, 200) for d in details[:5]],
            seconds=round(seconds, 2),
        )

    # -- explaining ---------------------------------------------------------------------------------

    def _explain(self, question: str) -> dspy.Prediction:
        started = time.monotonic()
        snippet = code_in(question)
        shown = ""
        if snippet:
            result = run_python(snippet, timeout_s=self.timeout_s)
            stdout = result.stdout.strip()
            errors = result.stderr.strip().splitlines()[-1:] if not result.ok else []
            problem = result.killed_reason or (errors[0] if errors else f"exit status {result.returncode}")
            run_output = "\n".join(filter(None, [stdout and f"stdout:\n{stdout[:2000]}",
                                                 not result.ok and f"it stopped with: {problem}"]))
            run_output = run_output or "it ran and printed nothing"
            shown = (f"\n\nRun in the sandbox, it printed:\n```\n{stdout[:2000]}\n```" if stdout
                     else "\n\nRun in the sandbox, it printed nothing.")
            if not result.ok:
                shown += f"\nIt stopped with: {_clip(problem, 300)}"
            checked = "the snippet was run in the sandbox and its real output is quoted; the prose was not checked"
            details = [_clip(run_output, 300)]
        else:
            run_output = "no code was given, so nothing was run"
            checked, details = "no code to run was found in the question; the prose was not checked", []
        pred = self.explain(question=question, code=snippet, run_output=run_output)
        verification = Verification(method="none", outcome="unchecked", checked=checked, details=details,
                                    seconds=round(time.monotonic() - started, 2))
        # No new code: the answer is the prose; the snippet it is about stays available as `snippet`.
        return dspy.Prediction(code="", snippet=snippet, explanation=f"{str(pred.explanation or '').strip()}{shown}",
                               reasoning=None, verification=verification, lm_calls=1, attempts=[])
