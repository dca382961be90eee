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


class WriteCode(dspy.Signature):
    """Write correct, self-contained Python code that does what is asked, and explain it briefly."""

    question: str = dspy.InputField()
    code: str = dspy.OutputField(desc="Python source code only, no Markdown fences")
    explanation: str = dspy.OutputField(desc="one to three sentences")


class AnswerGeneral(dspy.Signature):
    """Answer the question accurately. Reply with the answer itself (a name, number, date or short
    phrase), not a full sentence."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField(desc="the answer only, e.g. 'Real Madrid' or '1969'")
