"""Program of thought for word problems: the answer a program prints, one fix, chain of thought as the last resort.

The LM is `dspy.utils.DummyLM` (scripted replies, to test the control flow); every program runs in the real
sandbox through `tools.sandbox.run_python`.
"""

from __future__ import annotations

import dspy
import pytest
from dspy.utils import DummyLM

from sme_mcp.config.settings import Settings
from sme_mcp.experts.math_program import (
    PROGRAM_MAX_TOKENS,
    SAMPLE_TEMPERATURE,
    answer_from_output,
    implausible_answer,
    run_program,
)
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


@pytest.mark.parametrize(("question", "answer", "doubt"), [
    ("How many apples are left?", "-3", "negative"),
    ("How many minutes early will Toby be?", "-49.775", "negative"),
    ("How much water is in the remaining 24 liters?", "14.666666667", "fraction"),
    ("How many plates and glasses are there?", "Jeff has 86 glasses and 42 plates.", "not a number"),
    ("How many S'mores can each kid have?", "DeSean can have 8 S'mores.", None),
    ("How many minutes early will Toby be?", "Toby is -49.775 minutes early", "negative"),
    ("How much does Ann pay?", "15.5", None),
    ("How much does Ann pay?", "$15.50", None),
    ("What is the average of 3 and 4?", "3.5", None),
    ("The temperature was 5 degrees and fell by 8. What is it now?", "-3", None),
    ("A bank account holds -20 dollars and gets 5. What does it hold?", "-15", None),
    ("What is the probability of rolling a 1 or 2 on a die?", "0.333333333", None),
    ("Which day comes after Monday?", "Tuesday", None),
    ("How many apples are left?", "12", None),
])
def test_an_answer_that_cannot_be_right_is_told_apart(question: str, answer: str, doubt: str | None) -> None:
    reason = implausible_answer(question, answer)
    assert (reason is None) if doubt is None else (doubt in (reason or ""))


LEFT = "Ann has 5 apples and eats 2. How many apples are left?"


def retrying(policy: str) -> MathExpert:
    return MathExpert(tools=[], word_problems="program", implausible_retry=policy)  # type: ignore[arg-type]


def test_without_a_retry_an_implausible_answer_comes_back_marked_failed() -> None:
    lm = DummyLM([{"program": "print(2 - 5)"}])
    with dspy.context(lm=lm):
        pred = retrying("none")(question=LEFT)
    assert pred.answer == "-3" and len(lm.history) == 1
    assert (pred.verification.method, pred.verification.outcome) == ("check", "failed")
    assert "negative" in pred.verification.checked


def test_a_fix_is_told_why_the_answer_cannot_be_right_and_its_plausible_answer_replaces_it() -> None:
    lm = DummyLM([{"program": "print(2 - 5)"}, {"fixed_program": "print(5 - 2)"}])
    with dspy.context(lm=lm):
        pred = retrying("fix")(question=LEFT)
    assert pred.answer == "3" and len(lm.history) == 2
    fix_prompt = "\n".join(str(m["content"]) for m in lm.history[1]["messages"])
    assert "printed -3, which cannot be the answer" in fix_prompt and "print(2 - 5)" in fix_prompt
    assert pred.verification.outcome == "unchecked"
    assert "-3" in pred.verification.checked and "written again" in pred.verification.checked


def test_a_sample_is_a_fresh_program_at_temperature_with_its_own_rollout() -> None:
    lm = DummyLM([{"program": "print(2 - 5)"}, {"program": "print(5 - 2)"}])
    with dspy.context(lm=lm):
        pred = retrying("sample")(question=LEFT)
    assert pred.answer == "3"
    first, second = (call["kwargs"] for call in lm.history)
    assert "rollout_id" not in first and first.get("temperature", 0.0) == 0.0
    assert (second["temperature"], second["rollout_id"]) == (SAMPLE_TEMPERATURE, 1)
    assert second["max_tokens"] == PROGRAM_MAX_TOKENS


def test_fix_then_sample_stops_at_the_first_plausible_answer_and_keeps_the_first_when_none_is() -> None:
    lm = DummyLM([{"program": "print(2 - 5)"}, {"fixed_program": "print(2 - 6)"}, {"program": "print(5 - 2)"}])
    with dspy.context(lm=lm):
        assert retrying("fix_then_sample")(question=LEFT).answer == "3"
    assert len(lm.history) == 3
    lm = DummyLM([{"program": "print(2 - 5)"}, {"fixed_program": "print(2 - 6)"}, {"program": "print(1 - 5)"}])
    with dspy.context(lm=lm):
        pred = retrying("fix_then_sample")(question=LEFT)
    assert pred.answer == "-3" and pred.verification.outcome == "failed"
    assert pred.verification.details[1:] == ["fix: -4", "sample: -4"]
    assert "2 more program(s) gave no plausible answer" in pred.verification.checked


def test_a_plausible_answer_costs_no_retry() -> None:
    lm = DummyLM([{"program": "print(5 - 2)"}])
    with dspy.context(lm=lm):
        pred = retrying("fix_then_sample")(question=LEFT)
    assert pred.answer == "3" and len(lm.history) == 1 and pred.verification.outcome == "unchecked"
