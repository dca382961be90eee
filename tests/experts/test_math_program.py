"""Program of thought for word problems: the answer a program prints, one fix, chain of thought as the last resort.

The LM is `dspy.utils.DummyLM` (scripted replies, to test the control flow); every program runs in the real
sandbox through `tools.sandbox.run_python`.
"""

from __future__ import annotations

import dspy
import pytest
from dspy.utils import DummyLM

from sme_mcp.config.settings import Settings
from sme_mcp.experts.math_program import PROGRAM_MAX_TOKENS, answer_from_output, run_program
from sme_mcp.experts.modules import MathExpert

WORD_PROBLEM = "If I buy 3 notebooks at $4.50 each and a pen for $2, how much do I spend in total?"


@pytest.mark.parametrize(("stdout", "expected"), [
    ("15.5\n", "15.5"),
    ("Total:\n40.0\n\n", "40"),
    ("0.30000000000000004", "0.3"),
    ("1,234", "1234"),
    ("-7", "-7"),
    ("Monday", "Monday"),
    ("", None),
    ("  \n \n", None),
])
def test_the_last_printed_line_is_the_answer(stdout: str, expected: str | None) -> None:
    assert answer_from_output(stdout) == expected


def test_a_program_runs_in_the_sandbox_and_its_print_is_the_answer() -> None:
    run = run_program("```python\nnotebooks = 3 * 4.50\npen = 2\nprint(notebooks + pen)\n```")
    assert (run.answer, run.error) == ("15.5", None)
    assert run.program.startswith("notebooks")  # fences removed


@pytest.mark.parametrize(("program", "says"), [
    ("x = 1 / 0\nprint(x)", "ZeroDivisionError"),
    ("total = 3 * 4.5", "printed nothing"),
    ("while True:\n    pass", "timeout"),
    ("", "no program"),
    ("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)\nprint(1)", "Error"),
])
def test_a_failed_program_says_what_went_wrong(program: str, says: str) -> None:
    run = run_program(program)
    assert run.answer is None
    assert says in (run.error or "")


def expert() -> MathExpert:
    return MathExpert(tools=[], word_problems="program")


def test_a_word_problem_is_answered_by_one_program_call() -> None:
    lm = DummyLM([{"program": "print(3 * 4.50 + 2)"}])
    with dspy.context(lm=lm):
        pred = expert()(question=WORD_PROBLEM)
    assert pred.answer == "15.5"
    assert "print(3 * 4.50 + 2)" in pred.reasoning
    assert pred.verification.outcome == "unchecked" and "program" in pred.verification.checked
    assert len(lm.history) == 1


def test_a_failing_program_gets_one_fix_told_the_error() -> None:
    lm = DummyLM([{"program": "print(notebooks * 4.50 + 2)"},
                  {"fixed_program": "notebooks = 3\nprint(notebooks * 4.50 + 2)"}])
    with dspy.context(lm=lm):
        pred = expert()(question=WORD_PROBLEM)
    assert pred.answer == "15.5"
    fix_prompt = "\n".join(str(m["content"]) for m in lm.history[1]["messages"])
    assert "NameError" in fix_prompt and "notebooks" in fix_prompt


def test_chain_of_thought_answers_when_the_fix_fails_too() -> None:
    lm = DummyLM([{"program": "print(1/0)"}, {"fixed_program": "print(2/0)"},
                  {"reasoning": "3 times 4.50 is 13.50, plus 2.", "answer": "15.5"}])
    with dspy.context(lm=lm):
        pred = expert()(question=WORD_PROBLEM)
    assert pred.answer == "15.5"
    assert len(lm.history) == 3
    assert "Reason step by step" in "\n".join(str(m["content"]) for m in lm.history[2]["messages"])


def test_a_program_call_is_capped_below_the_roles_token_limit() -> None:
    lm = DummyLM([{"program": "print(3 * 4.50 + 2)"}])
    with dspy.context(lm=lm):
        expert()(question=WORD_PROBLEM)
    assert lm.history[0]["kwargs"]["max_tokens"] == PROGRAM_MAX_TOKENS


def test_programs_are_the_default_and_reasoning_adds_no_predictors() -> None:
    assert Settings().math_word_problems == "program"
    default = MathExpert(tools=[])
    names = {name for name, _ in default.named_predictors()}
    assert not any(name.startswith(("compute", "fix")) for name in names)
    lm = DummyLM([{"reasoning": "3 * 4.50 + 2", "answer": "15.5"}])
    with dspy.context(lm=lm):
        assert default(question=WORD_PROBLEM).answer == "15.5"
    assert "Reason step by step" in "\n".join(str(m["content"]) for m in lm.history[0]["messages"])


def test_a_symbolic_question_still_goes_to_react_not_to_a_program() -> None:
    assert {name for name, _ in expert().named_predictors()} >= {"compute", "fix", "reason.predict"}
    lm = DummyLM([{"next_thought": "done", "next_tool_name": "finish", "next_tool_args": {}},
                  {"reasoning": "done", "answer": "3*x**2"}], adapter=dspy.JSONAdapter())
    with dspy.context(lm=lm):
        pred = expert()(question="Differentiate x**3 with respect to x.")
    assert pred.answer == "3*x**2"
    assert "WriteMathProgram" not in str(lm.history[0]["messages"])
