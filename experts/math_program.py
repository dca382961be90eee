"""Program of thought for math word problems: the model writes a short Python program, the sandbox runs it.

The number the program prints is the answer, so the arithmetic is exact and the model writes a few lines
of code instead of a paragraph of reasoning. A program that fails (an error, nothing printed) goes back to
the model once with what went wrong; when that fails too, the caller falls back to chain of thought.

Example:
    >>> answer_from_output("Total:\\n15.500000000000002\\n")
    '15.5'
    >>> answer_from_output("")
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from sme_mcp.tools.markdown import strip_fences

# On 73 dev word problems the programs that ran took at most 253 tokens (p50 136); one ran on to the 1024-token
# limit twice, then chain of thought: 341 s for a wrong answer (bench/results/math_word_problems.json).
PROGRAM_MAX_TOKENS = 400
PROGRAM_TIMEOUT_S = 5.0
PROGRAM_MEMORY_MB = 256
MAX_ERROR_CHARS = 600
SAMPLE_TEMPERATURE = 0.7  # a fresh program after an implausible answer, as the code expert's fresh samples
# A fraction that does not end within this many decimals ("14.666666667") is rarely what a word problem about
# people, goods, money and time asks for; on the math dev split none of the right answers had one.
MAX_PLAUSIBLE_DECIMALS = 4

# The question asks for an amount: a count, a price, a time, a share.
_ASKS_AMOUNT = re.compile(r"\bhow (many|much|long|far|old|fast|tall|often|heavy)\b|\b(total|sum|average|percent(age)?|"
                          r"cost|price|profit|earn(s|ed)?|pay|spend|left|remain(s|ing)?|difference)\b", re.I)
# Words and numbers that make a negative answer possible.
_NEGATIVE_POSSIBLE = re.compile(r"(?<![\w)])-\s?\d|\b(negative|minus|below zero|debt|deficit|loss|owes?|degrees?|"
                                r"temperature|change in|net)\b", re.I)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# Questions whose answer may well be a long fraction.
_FRACTION_POSSIBLE = re.compile(r"\b(probability|ratio|fraction|proportion|decimals?|odds)\b", re.I)


@dataclass(frozen=True)
class ProgramRun:
    """One run of a math program: the answer it printed, or why there is none.

    Attributes:
        program: The program as run (fences stripped).
        answer: The last line it printed, a number tidied by `answer_from_output`; None when it failed.
        error: What went wrong, in words the model can act on; None when it printed an answer.
    """

    program: str
    answer: str | None
    error: str | None


def answer_from_output(stdout: str) -> str | None:
    """The last non-empty line a program printed; a float that is an integer or carries binary noise is tidied.

    Args:
        stdout: The program's standard output.

    Returns:
        The answer, or None when nothing was printed.

    Example:
        >>> answer_from_output("40.0"), answer_from_output("0.30000000000000004"), answer_from_output("Monday")
        ('40', '0.3', 'Monday')
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None
    last = lines[-1]
    try:
        value = float(last.replace(",", ""))
    except ValueError:
        return last
    if not math.isfinite(value):
        return last
    if value == round(value) and abs(value) < 1e15:
        return str(int(round(value)))
    return f"{round(value, 9):.9f}".rstrip("0").rstrip(".")


def implausible_answer(question: str, answer: str) -> str | None:
    """Why a word problem's printed answer cannot be right, in words the model can act on; None when it may be.

    A cheap check of the program's output, not of its reasoning: a word problem asking for an amount is not
    answered by words, by a negative number when nothing in it can be negative, or by a fraction that runs on
    ("14.666666667") when nothing in it is a rate or a share. The math expert returns such an answer as a failed
    check, after writing the program again if `MathExpert`'s `implausible_retry` says so (off by default: on math
    dev no retry mended one, bench/math_implausible.py).

    Args:
        question: The word problem.
        answer: What the program printed, tidied by `answer_from_output`.

    Returns:
        The reason, or None.

    Example:
        >>> implausible_answer("How many apples are left?", "-3")
        'it is negative, and nothing in the question can be negative: check the order of each subtraction'
        >>> implausible_answer("What is the temperature change?", "-3") is None
        True
        >>> implausible_answer("How much does Ann pay?", "15.5") is None
        True
        >>> implausible_answer("How much does Ann pay?", "Total: 15.5") is None
        True
    """
    text = answer.strip().removeprefix("$").removesuffix("%").replace(",", "").strip()
    try:
        value = float(text)
    except ValueError:
        numbers = _NUMBER.findall(text)
        if len(numbers) == 1:  # "Total: 15.5" is read as 15.5, as the gold sets' metric reads it
            return implausible_answer(question, numbers[0])
        if _ASKS_AMOUNT.search(question):
            return "it is not a number, and the question asks for an amount: print the number alone"
        return None
    if not math.isfinite(value):
        return "it is not a finite number: check each division"
    if value < 0 and not _NEGATIVE_POSSIBLE.search(question):
        return "it is negative, and nothing in the question can be negative: check the order of each subtraction"
    decimals = text.partition(".")[2]
    if len(decimals) > MAX_PLAUSIBLE_DECIMALS and not _FRACTION_POSSIBLE.search(question):
        return ("it is a fraction that does not come out even, and the question's amounts are whole or in cents: "
                "check each division and what is divided by what")
    return None


def run_program(text: str) -> ProgramRun:
    """Runs a model-written program in the sandbox (no network, time and memory limits) and reads its answer.

    Args:
        text: The model's reply field; Markdown fences around the code are removed.

    Returns:
        A `ProgramRun` with the answer, or with the error to show the model.

    Example:
        >>> run_program("apples = 3 * 4.5\\nprint(apples + 2)").answer  # doctest: +SKIP
        '15.5'
    """
    from sme_mcp.tools.sandbox import run_python

    program = strip_fences(text or "")
    if not program:
        return ProgramRun(program, None, "the reply held no program")
    try:
        result = run_python(program, timeout_s=PROGRAM_TIMEOUT_S, memory_mb=PROGRAM_MEMORY_MB)
    except (TypeError, ValueError) as exc:  # too long for the sandbox
        return ProgramRun(program, None, str(exc))
    if result.killed_reason:
        return ProgramRun(program, None, f"{result.killed_reason}; a short computation is enough")
    if not result.ok:
        error = result.stderr.strip() or f"exit status {result.returncode}"
        return ProgramRun(program, None, error[-MAX_ERROR_CHARS:])
    answer = answer_from_output(result.stdout)
    if answer is None:
        return ProgramRun(program, None, "the program printed nothing; end it with print(answer)")
    return ProgramRun(program, answer, None)
