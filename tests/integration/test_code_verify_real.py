"""The verified code expert on the real embedded model: its answer comes with code that passed checks it ran."""

from __future__ import annotations

import pytest

from sme_mcp.config.settings import LMSpec, RoleSettings, Settings
from sme_mcp.experts.service import ExpertService
from sme_mcp.tools.test_harness import run_tests

PRIMES_BELOW_50 = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47]


@pytest.mark.model
def test_is_prime_answer_passed_the_checks_it_ran(model_settings, local_server):
    settings = Settings().model_copy(update={"code": RoleSettings(chain=[LMSpec()])})  # the local model only
    service = ExpertService(settings, local_server)
    try:
        answer = service.ask("Write a Python function is_prime(n) that returns True if the integer n is a prime "
                             "number and False otherwise.", domain="code")
    finally:
        service.close()
    v = answer.verification
    assert answer.backend == "local" and answer.code and "def is_prime" in answer.code
    assert v is not None and v.method == "tests", v
    # The question states no tests, so the checks were the expert's own, and the answer says so.
    assert v.outcome == "passed" and v.tests_run and v.tests_run > 0 and v.tests_passed == v.tests_run, v
    assert "written by the expert" in v.checked
    # And the code is right by a check of ours, not only the expert's.
    ours = run_tests(answer.code, [f"assert [n for n in range(50) if is_prime(n)] == {PRIMES_BELOW_50}",
                                   "assert is_prime(97) and not is_prime(91)"])
    assert ours.passed, f"{ours.summary()}\n{answer.code}"
