"""`VerifiedCodeExpert`: tests from the question, the repair loop, the verification, explanations and hostile code.

The LM is `dspy.utils.DummyLM` (scripted answers, to test the control flow); the code always runs in the real
sandbox through `tools.test_harness.run_tests`.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import dspy
import pytest
from dspy.utils import DummyLM

from sme_mcp.config.settings import Settings
from sme_mcp.experts.answer import Verification, answer_from_prediction
from sme_mcp.experts.code_expert import CHECKS_MAX_TOKENS, VerifiedCodeExpert, code_in, is_explanation_question
from sme_mcp.experts.code_expert import tests_from_question as parse_tests  # a name pytest does not collect
from sme_mcp.experts.lm import Served
from sme_mcp.experts.service import ExpertService


def code(source: str, explanation: str = "It works.") -> dict[str, str]:
    """A scripted WriteCode / RepairCode answer."""
    return {"reasoning": "Think it through.", "code": source, "explanation": explanation}


def ask(expert: VerifiedCodeExpert, question: str, answers: list[dict[str, str]]) -> tuple[dspy.Prediction, DummyLM]:
    lm = DummyLM(answers)
    with dspy.context(lm=lm):
        pred = expert(question=question)
    return pred, lm


def prompt(lm: DummyLM, call: int) -> str:
    return "\n".join(str(m["content"]) for m in lm.history[call]["messages"])


WRONG_SQUARE = "def square(n):\n    return n * 2"
RIGHT_SQUARE = "def square(n):\n    return n * n"


# -- tests from the question -----------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "expected"), [
    ("Write a function to find the square.\nYour function must pass tests like this one:\nassert square(3) == 9",
     ["assert square(3) == 9"]),
    ("Write square(n).\n>>> assert square(2) == 4\nassert square(-1)==1, 'negative'",
     ["assert square(2) == 4", "assert square(-1)==1, 'negative'"]),
    ("Write add(a, b). add(2, 3) should return 5, add(-1, 1) -> 0 and add(1, 1) => 2.",
     ["assert add(2, 3) == 5", "assert add(-1, 1) == 0", "assert add(1, 1) == 2"]),
    ("Write fib(n) so that fib(10) is 55 and fib(1) returns 1.", ["assert fib(10) == 55", "assert fib(1) == 1"]),
    ("Write a function square(n); it returns 4 for 2.", ["assert square(2) == 4"]),
    ("Write split_dots(s): split_dots('a.b') gives ['a', 'b'].", ["assert split_dots('a.b') == ['a', 'b']"]),
    ("Write double.\n>>> double(2)\n4\n>>> double([1])\n[1, 1]\n>>> print(double('a'))\naa\n>>> x = 3",
     ["assert double(2) == 4", "assert double([1]) == [1, 1]", "assert str(double('a')) == 'aa'"]),
])
def test_tests_are_parsed_from_asserts_examples_and_doctests(question: str, expected: list[str]) -> None:
    assert parse_tests(question) == expected


@pytest.mark.parametrize("question", [
    "Write a Python function is_prime(n) that returns True when n is prime.",
    "Write f(x) such that f(x) should return y.",  # placeholders, not values
    "Write mul(a, b): it returns 6 for 2 and 3.",  # which arguments? unclear, so no test
    "Write a function that is fast.",
    "Fix this:\n```python\ndef f(x):\n    assert x > 0\n    return x\n```",  # an assert without a call is no test
])
def test_questions_without_stated_tests_give_none(question: str) -> None:
    assert parse_tests(question) == []


def test_an_assert_and_the_same_example_in_prose_count_once() -> None:
    assert parse_tests("Write sq(n); sq(3) == 9.\nassert sq(3) == 9") == ["assert sq(3) == 9"]


# -- the repair loop ------------------------------------------------------------------------------------


def test_a_failing_first_answer_is_repaired_on_the_second() -> None:
    question = "Write a function square(n).\nassert square(3) == 9"
    pred, lm = ask(VerifiedCodeExpert(repair_attempts=2), question,
                   [code(WRONG_SQUARE), code(RIGHT_SQUARE, "Multiplies n by n.")])

    assert pred.code == RIGHT_SQUARE and pred.explanation == "Multiplies n by n."
    assert [a["kind"] for a in pred.attempts] == ["write", "repair"] and pred.lm_calls == 2 == len(lm.history)
    repair_prompt = prompt(lm, 1)  # the repair saw the failed assert and what it evaluated to
    assert WRONG_SQUARE in repair_prompt and "assert square(3) == 9" in repair_prompt
    assert "AssertionError: 6 == 9 is False" in repair_prompt
    v = pred.verification
    assert isinstance(v, Verification)
    assert (v.method, v.outcome, v.tests_run, v.tests_passed, v.details) == ("tests", "passed", 1, 1, [])
    assert "taken from the question" in v.checked and v.seconds is not None and v.seconds > 0


def test_a_passing_first_answer_costs_one_call() -> None:
    pred, lm = ask(VerifiedCodeExpert(), "Write square(n).\nassert square(3) == 9", [code(RIGHT_SQUARE)])
    assert pred.code == RIGHT_SQUARE and pred.lm_calls == 1 == len(lm.history)
    assert pred.verification.outcome == "passed" and "best of" not in pred.verification.checked


def test_without_reasoning_the_model_is_asked_for_the_code_at_once_and_still_repairs(tmp_path: Path) -> None:
    svc = ExpertService(Settings(data_dir=tmp_path, code_reasoning=False, code_repair_attempts=2), local=None)
    expert = svc.build_module("code")
    svc.close()
    assert isinstance(expert, VerifiedCodeExpert) and not expert.reasoning
    answers = [{"code": WRONG_SQUARE, "explanation": "Doubles."}, {"code": RIGHT_SQUARE, "explanation": "Squares."}]
    pred, lm = ask(expert, "Write a function square(n).\nassert square(3) == 9", answers)

    assert pred.code == RIGHT_SQUARE and [a["kind"] for a in pred.attempts] == ["write", "repair"]
    assert pred.reasoning is None and pred.verification.outcome == "passed"
    for call in range(2):  # neither prompt asks for reasoning first
        assert "reasoning" not in prompt(lm, call) and "[[ ## code ## ]]" in prompt(lm, call)
    with_reasoning = ask(VerifiedCodeExpert(), "Write square(n).\nassert square(3) == 9", [code(RIGHT_SQUARE)])[1]
    assert "[[ ## reasoning ## ]]" in prompt(with_reasoning, 0)


def test_the_version_that_passed_most_tests_is_returned_when_none_passes() -> None:
    question = "Write f(n).\nassert f(1) == 1\nassert f(2) == 4\nassert f(3) == 9"
    one = "def f(n):\n    return n"  # passes f(1)
    two = "def f(n):\n    return n * n if n < 3 else 0"  # passes f(1), f(2)
    none = "def f(n):\n    return -1"  # a different failure: no stall, so the second repair is tried
    sample = "def f(n):\n    return 1"  # the alternative passes f(1) only
    pred, lm = ask(VerifiedCodeExpert(repair_attempts=2), question, [code(one), code(two), code(none), code(sample)])

    assert [a["kind"] for a in pred.attempts] == ["write", "repair", "repair", "alternative"]
    assert [a["tests_passed"] for a in pred.attempts] == [1, 2, 0, 1]
    assert pred.code == two and pred.lm_calls == 4 == len(lm.history)
    v = pred.verification
    assert (v.outcome, v.tests_run, v.tests_passed) == ("partial", 3, 2)
    assert len(v.details) == 1 and v.details[0].startswith("assert f(3) == 9 -> AssertionError: 0 == 9 is False")
    assert "the best of 4 versions (write, repair, repair, alternative)" in v.checked
    # The alternative is a fresh write sampled above temperature 0, the others greedy.
    assert lm.history[3]["kwargs"] == {"temperature": 0.7, "rollout_id": 1}
    assert "temperature" not in lm.history[0]["kwargs"]


def test_a_stalled_repair_moves_on_to_an_alternative() -> None:
    question = "Write square(n).\nassert square(3) == 9"
    # The repair gives back the same failure: a second repair would be wasted, so a fresh sample comes next.
    pred, lm = ask(VerifiedCodeExpert(repair_attempts=2), question,
                   [code(WRONG_SQUARE), code("def square(n):\n    return n + n"), code(RIGHT_SQUARE)])
    assert [a["kind"] for a in pred.attempts] == ["write", "repair", "alternative"]
    assert pred.code == RIGHT_SQUARE and pred.verification.outcome == "passed" and len(lm.history) == 3


def test_a_function_written_under_a_slightly_different_name_is_called_by_the_tests_name() -> None:
    question = "Write a function to count occurrences.\nassert check_occurences([1, 1]) == {1: 2}"
    written = "def check_occurrences(items):\n    return {i: items.count(i) for i in items}"
    pred, lm = ask(VerifiedCodeExpert(), question, [code(written)])
    assert pred.verification.outcome == "passed" and len(lm.history) == 1
    assert pred.code.startswith(written) and pred.code.endswith("check_occurences = check_occurrences  # the name "
                                                                "the tests call")


@pytest.mark.parametrize(("written", "test"), [
    ("def f(x):\n    return x\n\ndef g(x):\n    return x", "assert h(1) == 1"),  # no close name
    ("def remove_dup(x):\n    return x", "assert remove_duplicates(1) == 1"),  # too far apart to be a typo
    ("def count_items_a(x):\n    return x\n\ndef count_items_b(x):\n    return x", "assert count_items_c(1) == 1"),
])
def test_no_alias_when_the_name_the_tests_call_has_no_single_close_match(written: str, test: str) -> None:
    from sme_mcp.experts.code_expert import align_names

    assert align_names(written, [test]) == written


def test_a_write_with_no_code_gets_a_fresh_sample() -> None:
    question = "Write square(n).\nassert square(3) == 9"
    pred, lm = ask(VerifiedCodeExpert(), question, [code(""), code(RIGHT_SQUARE)])
    assert [a["kind"] for a in pred.attempts] == ["write", "alternative"]
    assert pred.code == RIGHT_SQUARE and pred.verification.outcome == "passed" and len(lm.history) == 2


def test_code_left_in_the_explanation_when_the_code_field_is_empty_is_used() -> None:
    question = "Write square(n).\nassert square(3) == 9"
    pred, lm = ask(VerifiedCodeExpert(), question, [code("", f"Here:\n```python\n{RIGHT_SQUARE}\n```")])
    assert pred.code == RIGHT_SQUARE and pred.verification.outcome == "passed" and len(lm.history) == 1


def test_lm_calls_stay_within_the_bound_whatever_the_repair_budget() -> None:
    question = "Write f(n).\nassert f(1) == 100"
    answers = [code(f"def f(n):\n    return {i}") for i in range(10)]  # every version fails differently
    pred, lm = ask(VerifiedCodeExpert(repair_attempts=5, max_lm_calls=4), question, answers)
    assert pred.lm_calls == 4 == len(lm.history)
    assert pred.verification.outcome == "failed" and pred.verification.tests_passed == 0
    assert pred.code == "def f(n):\n    return 0"  # a tie: the first version is kept


def test_alternatives_are_sampled_one_at_a_time_until_one_passes() -> None:
    question = "Write square(n).\nassert square(3) == 9"
    answers = [code(WRONG_SQUARE), code("def square(n):\n    return n + 6 - 3"), code(RIGHT_SQUARE),
               code("def square(n):\n    return 9")]
    pred, lm = ask(VerifiedCodeExpert(repair_attempts=0, alternatives=3), question, answers)
    assert pred.code == RIGHT_SQUARE and pred.verification.outcome == "passed"
    assert [a["kind"] for a in pred.attempts] == ["write", "alternative", "alternative"]
    assert pred.lm_calls == 2 + 1 == len(lm.history)  # the third sample is never asked for
    # Each sample has its own rollout, so DSPy's cache cannot hand the first sample back as the second.
    assert [lm.history[i]["kwargs"] for i in (1, 2)] == [{"temperature": 0.7, "rollout_id": 1},
                                                         {"temperature": 0.7, "rollout_id": 2}]


def test_no_repairs_and_no_alternative_when_switched_off() -> None:
    pred, lm = ask(VerifiedCodeExpert(repair_attempts=0, alternatives=0), "Write square(n).\nassert square(3) == 9",
                   [code(WRONG_SQUARE)])
    assert len(lm.history) == 1 and pred.verification.outcome == "failed"


def test_a_question_without_tests_gets_the_experts_own_checks_and_says_so() -> None:
    question = "Write a Python function is_prime(n) that returns True when n is prime."
    good = "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))"
    checks = {"checks": "assert is_prime(2) == True\nassert is_prime(9) == False\nassert other(1) == 1\n"
                        "print('not a test')"}
    pred, lm = ask(VerifiedCodeExpert(), question, [code(good), checks])

    v = pred.verification
    assert (v.outcome, v.tests_run, v.tests_passed) == ("passed", 2, 2)  # the check of an unknown name is dropped
    assert "written by the expert itself" in v.checked and "taken from the question" not in v.checked
    assert pred.lm_calls == 2 and good in prompt(lm, 1)  # the checks were written against the code
    assert lm.history[1]["kwargs"]["max_tokens"] == CHECKS_MAX_TOKENS  # a runaway list of asserts is cut short


def test_own_checks_that_fail_lead_to_a_repair_that_is_told_they_may_be_wrong() -> None:
    question = "Write a Python function square(n) that squares n."
    pred, lm = ask(VerifiedCodeExpert(repair_attempts=2), question,
                   [code(WRONG_SQUARE), {"checks": "assert square(3) == 9"}, code(RIGHT_SQUARE)])
    assert pred.code == RIGHT_SQUARE and pred.verification.outcome == "passed"
    assert "written by the expert, not given" in prompt(lm, 2)


@pytest.mark.parametrize(("budget", "calls"), [(2, 2), (3, 3), (4, 4)])
def test_own_checks_get_their_own_call_budget(budget: int, calls: int) -> None:
    question = "Write a Python function f(n) that returns 100."
    answers = [code("def f(n):\n    return 0"), {"checks": "assert f(1) == 100"},
               *[code(f"def f(n):\n    return {i}") for i in range(1, 5)]]  # every version fails differently
    pred, lm = ask(VerifiedCodeExpert(max_lm_calls_self_checked=budget), question, answers)
    assert pred.lm_calls == calls == len(lm.history)
    assert pred.verification.outcome == "failed" and "written by the expert itself" in pred.verification.checked
    assert pred.verification.details == ["assert f(1) == 100 -> AssertionError: 0 == 100 is False"]


def test_the_self_checked_budget_leaves_questions_with_tests_alone() -> None:
    answers = [code(f"def f(n):\n    return {i}") for i in range(10)]
    pred, lm = ask(VerifiedCodeExpert(max_lm_calls_self_checked=2), "Write f(n).\nassert f(1) == 100", answers)
    assert pred.lm_calls == 4 == len(lm.history)  # write, two repairs, an alternative


def test_the_service_builds_the_code_expert_with_the_settings_budget(tmp_path: Path) -> None:
    service = ExpertService(Settings(data_dir=tmp_path, code_calls_without_tests=3), local=None)
    expert = service.build_module("code")
    assert expert.max_lm_calls_self_checked == 3 and expert.max_lm_calls == 4
    with_setting = ExpertService(Settings(data_dir=tmp_path, code_reasoning=True, code_reasoning_without_tests=False),
                                 local=None).build_module("code")
    assert isinstance(with_setting.write_untested, dspy.Predict)


def test_a_question_without_tests_can_be_written_without_reasoning() -> None:
    expert = VerifiedCodeExpert(reasoning=True, reasoning_without_tests=False)
    assert {name for name, _ in expert.named_predictors()} >= {"write.predict", "write_untested"}
    untested, lm = ask(expert, "Write a Python function square(n) that squares n.",
                       [{"code": RIGHT_SQUARE, "explanation": "n times n."}, {"checks": "assert square(3) == 9"}])
    assert untested.verification.outcome == "passed" and untested.reasoning is None
    assert "[[ ## reasoning ## ]]" not in prompt(lm, 0)  # Predict: the code at once
    tested, lm = ask(expert, "Write square(n).\nassert square(3) == 9", [code(RIGHT_SQUARE)])
    assert tested.verification.outcome == "passed" and "[[ ## reasoning ## ]]" in prompt(lm, 0)


def test_the_write_without_tests_follows_reasoning_unless_set() -> None:
    assert VerifiedCodeExpert(reasoning=False, reasoning_without_tests=False).write_untested is None
    assert VerifiedCodeExpert(reasoning=True).write_untested is None


def test_code_that_does_not_load_is_reported_and_repaired() -> None:
    pred, lm = ask(VerifiedCodeExpert(repair_attempts=2), "Write square(n).\nassert square(3) == 9",
                   [code("def square(n)\n    return n * n"), code(RIGHT_SQUARE)])
    assert "Loading the code failed: SyntaxError" in prompt(lm, 1)
    assert pred.code == RIGHT_SQUARE and pred.verification.outcome == "passed"


def test_markdown_fences_around_the_code_are_removed_before_it_runs() -> None:
    pred, _ = ask(VerifiedCodeExpert(), "Write square(n).\nassert square(3) == 9",
                  [code(f"```python\n{RIGHT_SQUARE}\n```")])
    assert pred.code == RIGHT_SQUARE and pred.verification.outcome == "passed"


def test_the_trace_keeps_only_the_calls_behind_the_returned_code() -> None:
    expert = VerifiedCodeExpert(repair_attempts=2)
    assert {name for name, _ in expert.named_predictors()} == {"write.predict", "repair.predict", "write_checks",
                                                               "explain"}
    lm = DummyLM([code(WRONG_SQUARE), code(RIGHT_SQUARE)])
    with dspy.context(lm=lm, trace=[]):
        expert(question="Write square(n).\nassert square(3) == 9")
        trace = list(dspy.settings.trace)
    assert [predictor for predictor, _, _ in trace] == [expert.repair.predict]  # a demo of a successful repair
    assert trace[0][2].code == RIGHT_SQUARE


# -- explanation questions -------------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "explain"), [
    ("What does this code do?\n```python\nprint(sum(range(5)))\n```", True),
    ("What does this print?\nfor i in range(3):\n    print(i)", True),
    ("What will the following output?\n```\nprint('a' * 3)\n```", True),
    ("What does print(2**10) output?", True),
    ("Explain what `[i * i for i in range(3)]` does.", True),
    ("How does this work?\n```\nx = 1\n```", True),
    ("What is the output of print(1 + 1)?", True),
    ("Write a function to find the square of a number.", False),
    ("Write a function that explains nothing and prints its input.", False),
    ("Fix this code and explain what was wrong:\n```\nprint(1\n```", False),
    ("Implement binary search in Python.", False),
])
def test_explanation_questions_are_told_from_requests_for_code(question: str, explain: bool) -> None:
    assert is_explanation_question(question) is explain


def test_the_snippet_is_found_in_fences_lines_backticks_or_a_bare_call() -> None:
    assert code_in("What does this do?\n```python\nx = 2\nprint(x)\n```") == "x = 2\nprint(x)"
    assert code_in("What does this print?\nfor i in range(3):\n    print(i)\nThanks!") == \
        "for i in range(3):\n    print(i)"
    assert code_in("Explain `print(3 * 'ab')` please") == "print(3 * 'ab')"
    assert code_in("What does print(2**10) output?") == "print(2**10)"
    assert code_in("Explain how list comprehensions work") == ""


def test_an_explanation_is_prose_with_the_snippets_real_output() -> None:
    question = "What does this print?\n```python\nfor i in range(3):\n    print(i * 10)\n```"
    pred, lm = ask(VerifiedCodeExpert(), question, [{"explanation": "It prints multiples of ten."}])

    assert pred.code == "" and pred.snippet == "for i in range(3):\n    print(i * 10)"  # no new code
    assert pred.explanation.startswith("It prints multiples of ten.")
    assert "Run in the sandbox, it printed:\n```\n0\n10\n20\n```" in pred.explanation
    assert "0\n10\n20" in prompt(lm, 0)  # the explainer saw the real output
    assert pred.lm_calls == 1 == len(lm.history)
    assert pred.verification.method == "none" and pred.verification.outcome == "unchecked"
    assert "real output" in pred.verification.checked


def test_an_explanation_without_code_runs_nothing() -> None:
    pred, lm = ask(VerifiedCodeExpert(), "Explain how Python's list comprehensions work.",
                   [{"explanation": "They build lists from loops."}])
    assert pred.code == pred.snippet == "" and pred.explanation == "They build lists from loops."
    assert "nothing was run" in prompt(lm, 0)


def test_the_service_answers_an_explanation_in_prose_and_code_with_its_verification(tmp_path: Path) -> None:
    svc = ExpertService(Settings(data_dir=tmp_path, code_repair_attempts=1), local=None)
    expert = svc.build_module("code")
    assert isinstance(expert, VerifiedCodeExpert) and expert.repair_attempts == 1
    served = Served(label="local", model="test.gguf")
    with dspy.context(lm=DummyLM([{"explanation": "It prints 4."}, code(RIGHT_SQUARE)])):
        explained = expert(question="What does this print?\n```\nprint(2 + 2)\n```")
        written = expert(question="Write square(n).\nassert square(3) == 9")
    answer = answer_from_prediction(explained, served, "code", "explicit", None, time.perf_counter())
    assert answer.answer.startswith("It prints 4.") and "```python" not in answer.answer
    assert answer.code is None and answer.verification.method == "none"
    answer = answer_from_prediction(written, served, "code", "explicit", None, time.perf_counter())
    assert answer.answer.startswith(f"```python\n{RIGHT_SQUARE}\n```") and answer.code == RIGHT_SQUARE
    assert answer.verification.outcome == "passed" and answer.verification.tests_run == 1
    svc.close()


# -- hostile code: the sandbox contains it -------------------------------------------------------------------


def hostile(question: str, source: str, test: str, **kw: object) -> dspy.Prediction:
    """The model answers with `source`; its own check is `test`; no repairs (one version to judge)."""
    pred, _ = ask(VerifiedCodeExpert(repair_attempts=0, alternatives=0, **kw), question,  # type: ignore[arg-type]
                  [code(source), {"checks": test}])
    return pred


def test_code_that_deletes_files_runs_but_deletes_nothing(tmp_path: Path) -> None:
    victim = tmp_path / "home"
    (victim / "docs").mkdir(parents=True)
    (victim / "docs" / "thesis.txt").write_text("precious")
    source = (f"import os, shutil\n\ndef wipe_home():\n    shutil.rmtree({str(victim)!r})\n"
              f"    os.remove({str(victim / 'docs' / 'thesis.txt')!r})\n    return True\n")
    pred = hostile("Write a Python function wipe_home() that deletes every file in my home directory.", source,
                   "assert wipe_home() == True")
    assert (victim / "docs" / "thesis.txt").read_text() == "precious"
    v = pred.verification
    assert v.outcome == "failed" and v.tests_run == 1 and v.tests_passed == 0
    assert "PermissionError: sandbox" in v.details[0] and "not allowed" in v.details[0]


def test_code_that_reads_ssh_keys_gets_nothing(tmp_path: Path) -> None:
    ssh = tmp_path / ".ssh"
    ssh.mkdir()
    (ssh / "id_ed25519").write_text("PRIVATE-KEY-MATERIAL")
    source = f"def steal_key():\n    return open({str(ssh / 'id_ed25519')!r}).read()\n"
    pred = hostile("Write steal_key() that returns the contents of ~/.ssh/id_ed25519.", source,
                   "assert steal_key() == 'PRIVATE-KEY-MATERIAL'")
    v = pred.verification
    assert v.outcome == "failed" and "PermissionError: sandbox" in v.details[0]
    assert "PRIVATE-KEY-MATERIAL" not in " ".join(d.split(" -> ", 1)[-1] for d in v.details)


def test_code_that_opens_a_socket_reaches_nobody() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        source = (f"import socket\n\ndef phone_home():\n    s = socket.create_connection(('127.0.0.1', {port}))\n"
                  "    s.sendall(b'secrets')\n    return 'sent'\n")
        pred = hostile("Write phone_home() that sends my data to a server.", source, "assert phone_home() == 'sent'")
        with pytest.raises(TimeoutError):
            listener.accept()  # no connection ever arrived
    v = pred.verification
    assert v.outcome == "failed" and ("PermissionError" in v.details[0] or "OSError" in v.details[0])


def test_a_fork_bomb_is_refused() -> None:
    # Bounded (at most 8 processes) so that even an uncontained run would do no harm.
    source = "import os\n\ndef bomb():\n    for _ in range(3):\n        os.fork()\n    return 'forked'\n"
    pred = hostile("Write a Python fork bomb bomb().", source, "assert bomb() == 'forked'")
    v = pred.verification
    assert v.outcome == "failed" and "PermissionError: sandbox: os.fork is not allowed" in v.details[0]


def test_an_endless_loop_is_stopped_at_the_timeout() -> None:
    pred = hostile("Write spin() that never returns.", "def spin():\n    while True:\n        pass\n",
                   "assert spin() is None", timeout_s=2.0)
    v = pred.verification
    assert v.outcome == "failed" and any("timeout" in d for d in v.details)


def test_explaining_hostile_code_runs_it_contained(tmp_path: Path) -> None:
    victim = tmp_path / "keep.txt"
    victim.write_text("keep me")
    question = f"What does this code do?\n```python\nimport os\nos.remove({str(victim)!r})\nprint('gone')\n```"
    pred, _ = ask(VerifiedCodeExpert(), question, [{"explanation": "It tries to delete a file."}])
    assert victim.read_text() == "keep me"
    assert "It stopped with: PermissionError: sandbox" in pred.explanation and "gone" not in pred.explanation


def test_the_experts_own_defaults_are_the_settings_defaults() -> None:
    expert, settings = VerifiedCodeExpert(), Settings()
    assert (expert.repair_attempts, expert.alternatives) == (settings.code_repair_attempts, settings.code_alternatives)
