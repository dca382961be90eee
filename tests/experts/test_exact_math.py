"""The exact-math path: which requests map onto one SymPy operation, and what it answers."""

from __future__ import annotations

import pytest

from sme_mcp.experts.exact_math import exact_request
from sme_mcp.tools.worker import SympyWorkerPool


@pytest.mark.parametrize(
    ("question", "op", "kwargs"),
    [
        ("What is the derivative of x**3*sin(x)?", "differentiate", {"expression": "x**3*sin(x)", "order": 1}),
        ("second derivative of x**4", "differentiate", {"expression": "x**4", "order": 2}),
        ("What is d/dx of x**2 + 3*x?", "differentiate", {"expression": "x**2 + 3*x", "order": 1, "variable": "x"}),
        ("Differentiate f(x) = 6*x/(3*x**2 + 2) with respect to x.", "differentiate",
         {"expression": "6*x/(3*x**2 + 2)", "order": 1, "variable": "x"}),
        ("What is the integral of x*exp(x) dx?", "integrate", {"expression": "x*exp(x)", "variable": "x"}),
        ("Evaluate the definite integral of sqrt(x) from x = 0 to x = 9.", "integrate",
         {"expression": "sqrt(x)", "lower": "0", "upper": "9"}),
        ("Compute the integral of 1/x dx over the interval [1, E].", "integrate",
         {"expression": "1/x", "variable": "x", "lower": "1", "upper": "E"}),
        ("Solve x**2 - 5*x + 6 = 0", "solve", {"equations": ["x**2 - 5*x + 6 = 0"]}),
        ("solve x + y = 10, x - y = 4", "solve", {"equations": ["x + y = 10", "x - y = 4"]}),
        ("Find every real x with x**3 - 4*x**2 + x + 6 = 0.", "solve",
         {"equations": ["x**3 - 4*x**2 + x + 6 = 0"], "variables": ["x"]}),
        ("What's the limit of sin(x)/x as x approaches 0?", "limit",
         {"expression": "sin(x)/x", "variable": "x", "point": "0"}),
        ("Compute lim_(x -> infinity) (5*x**2 + 1)/(x**2 - 5).", "limit",
         {"expression": "(5*x**2 + 1)/(x**2 - 5)", "variable": "x", "point": "oo"}),
        ("Expand (x + 2)**3", "expand", {"expression": "(x + 2)**3"}),
        ("Factor x**2 - 9", "factor", {"expression": "x**2 - 9"}),
        ("What is the determinant of [[1, 2], [3, 4]]?", "matrix_determinant", {"matrix": "[[1, 2], [3, 4]]"}),
        ("What is 15% of 240?", "evaluate", {"expression": "15/100*240"}),
        ("what is seven times eight", "evaluate", {"expression": "7*8"}),
        ("whats 12 times 17", "evaluate", {"expression": "12*17"}),
        ("what's the sum of 3, 4 and 5", "evaluate", {"expression": "3 + 4 + 5"}),
        ("What is 1/2 + 1/3?", "evaluate", {"expression": "1/2 + 1/3"}),
    ],
)
def test_plain_requests_map_onto_one_operation(question, op, kwargs):
    request = exact_request(question)
    assert request is not None, question
    assert (request.op, request.kwargs) == (op, kwargs)


@pytest.mark.parametrize(
    "question",
    [
        "Write a Python function that returns the n-th Fibonacci number.",
        "What is the capital of Australia?",
        "Solve the riddle of the sphinx",
        "integrate Slack with GitHub",
        "expand on the history of Rome",
        "What is the product of inertia?",
        "If I buy 3 notebooks at $4.50 each and a pen for $2, how much do I spend?",
        "simplify this function: def f(x): return x",
        "",
    ],
)
def test_prose_and_word_problems_go_to_the_experts(question):
    assert exact_request(question) is None


@pytest.fixture(scope="module")
def pool():
    p = SympyWorkerPool(size=1, timeout=10, memory_mb=1024)
    yield p
    p.close()


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is the derivative of x**3*sin(x)?", "x**3*cos(x) + 3*x**2*sin(x)"),
        ("What is the integral of x*exp(x) dx?", "(x - 1)*exp(x) + C"),
        ("Solve x**2 - 5*x + 6 = 0", "x = 2; x = 3"),
        ("What is 15% of 240?", "36"),
        ("Expand (x + 2)**3", "x**3 + 6*x**2 + 12*x + 8"),
    ],
)
def test_the_operation_answers_exactly(pool, question, answer):
    request = exact_request(question)
    assert pool.run(request.op, **request.kwargs)["result"] + request.suffix == answer


@pytest.mark.parametrize(
    ("question", "op", "kwargs"),
    [
        ("what is the sum of 1,000 and 2,000", "evaluate", {"expression": "1000 + 2000"}),
        ("What is 10!", "evaluate", {"expression": "factorial(10)"}),
        ("what is 3×4", "evaluate", {"expression": "3*4"}),
        ("differentiate x**2 with respect to x", "differentiate", {"expression": "x**2", "order": 1, "variable": "x"}),
    ],
)
def test_numbers_signs_and_variables_are_read_as_written(question, op, kwargs):
    request = exact_request(question)
    assert request is not None and (request.op, request.kwargs) == (op, kwargs)


def test_sin_x_is_never_read_as_s_in_x():
    for question in ("derivative of sin x", "integrate sin x", "differentiate x^2 + sin x"):
        request = exact_request(question)
        assert request is None or request.kwargs.get("variable") != "x" or "sin" in request.kwargs["expression"]
        assert request is None or request.kwargs["expression"] not in ("s", "x^2 + s")


def test_equations_with_periodic_functions_and_real_only_requests():
    assert exact_request("solve sin(x) = 0") is None  # infinitely many solutions
    real = exact_request("Find every real x with x**2 + 1 = 0")
    assert real is not None and real.real_only
    assert not exact_request("Solve x**2 - 5*x + 6 = 0").real_only


def test_real_solutions_drop_complex_roots_and_give_up_when_none_are_left():
    from sme_mcp.experts.exact_answer import _real_solutions

    assert _real_solutions({"result": "x = -I; x = I", "latex": "", "numeric": None}) is None
    kept = _real_solutions({"result": "x = 1; x = -1/2 - sqrt(3)*I/2; x = -1/2 + sqrt(3)*I/2", "latex": "",
                            "numeric": None})
    assert kept["result"] == "x = 1"


def test_division_by_zero_is_answered_as_undefined(pool, tmp_path):
    from sme_mcp.config.settings import Settings
    from sme_mcp.experts.service import ExpertService

    service = ExpertService(Settings(data_dir=tmp_path), None, pool=pool)
    answer = service.ask("what is 1/0")
    assert answer.answer == "undefined" and answer.routed_by == "fast_path"
    assert service.ask("limit of 1/x as x approaches 0").answer == "the limit does not exist"
