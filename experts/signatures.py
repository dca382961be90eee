"""Typed DSPy signatures of the router and the experts."""

from __future__ import annotations

from typing import Literal

import dspy


class RouteQuestion(dspy.Signature):
    """Choose the expert for a question: math (arithmetic, algebra, calculus, word problems with
    numbers), code (writing, fixing or explaining programs), or general (facts, definitions,
    anything else)."""

    question: str = dspy.InputField()
    domain: Literal["math", "code", "general"] = dspy.OutputField()
    confidence: float = dspy.OutputField(desc="between 0 and 1")


class SolveMath(dspy.Signature):
    """Solve the math problem with the tools. Call the one tool that computes exactly what the
    question asks, then call finish at once; never compute anything the question did not ask
    for. Tool inputs use Python syntax such as x**3*sin(x), never LaTeX. Keep each thought to
    one short sentence. The answer is only the final number or exact expression."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField(desc="final answer only, e.g. 42 or 3*x**2*sin(x) + x**3*cos(x)")


class SolveWordProblem(dspy.Signature):
    """Solve the math problem. Reason step by step, then give the final answer."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField(desc="final answer only: a number or an exact expression")


class WriteMathProgram(dspy.Signature):
    """Write a short Python program that computes the answer to the math problem and prints it. Name each
    quantity of the problem in a variable, compute step by step, and end with one print of the final answer
    (a number, no units or words). Plain Python only: no input(), no files."""

    question: str = dspy.InputField()
    program: str = dspy.OutputField(desc="Python source code only, no Markdown fences")


class FixMathProgram(dspy.Signature):
    """The program written for the math problem failed when it was run. Return the whole corrected program; it
    must end with one print of the final answer (a number, no units or words)."""

    question: str = dspy.InputField()
    program: str = dspy.InputField(desc="the program that failed")
    error: str = dspy.InputField(desc="what went wrong when it ran")
    fixed_program: str = dspy.OutputField(desc="Python source code only, no Markdown fences")


class WriteCode(dspy.Signature):
    """Write correct, self-contained Python code that does what is asked, and explain it briefly."""

    question: str = dspy.InputField()
    code: str = dspy.OutputField(desc="Python source code only, no Markdown fences")
    explanation: str = dspy.OutputField(desc="one to three sentences")


class RepairCode(dspy.Signature):
    """The code was run against tests in a sandbox and failed. Find the mistake the failure report points to and
    return the whole corrected program. It must still do what the question asks and keep the names the tests call."""

    question: str = dspy.InputField()
    previous_code: str = dspy.InputField(desc="the code that failed")
    failure: str = dspy.InputField(desc="the tests that failed, with the actual result or the error")
    code: str = dspy.OutputField(desc="the whole corrected Python source code only, no Markdown fences")
    explanation: str = dspy.OutputField(desc="one to three sentences")


class WriteChecks(dspy.Signature):
    """Write 2 or 3 quick tests of the code: assert lines that call its function on small inputs and compare the
    result with what the question asks for. Work the expected values out from the question, not from the code."""

    question: str = dspy.InputField()
    code: str = dspy.InputField()
    checks: str = dspy.OutputField(desc="one assert statement per line, e.g. assert add(2, 3) == 5")


class ExplainCode(dspy.Signature):
    """Answer the question about the code in plain prose. When the code was run, its real output is given: what
    the answer says the code prints or returns must agree with it."""

    question: str = dspy.InputField()
    code: str = dspy.InputField(desc="the code the question is about (may be empty)")
    run_output: str = dspy.InputField(desc="what running the code in a sandbox printed, or why it was not run")
    explanation: str = dspy.OutputField(desc="a short, clear explanation")


class AnswerGeneral(dspy.Signature):
    """Answer the question accurately. Reply with the answer itself (a name, number, date or short
    phrase), not a full sentence."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField(desc="the answer only, e.g. 'Real Madrid' or '1969'")
