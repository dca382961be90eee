"""The argument types of the MCP tools: `Annotated` types whose `Field` becomes each argument's JSON Schema.

The tool functions in server/app.py, server/sympy_tools.py and server/rag_tools.py declare their
arguments with these, so a constraint (a length bound, a range, a description) is written once and
the SDK's `@server.tool()` derives the schema and validates every call against it.

Example:
    >>> from pydantic import TypeAdapter
    >>> TypeAdapter(Expression).json_schema()["maxLength"]
    5000
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

MAX_TEXT = 5000  # mirrors tools.parse.MAX_INPUT_CHARS; longer inputs fail schema validation early

# ask_expert
Question = Annotated[str, Field(max_length=100_000, description="The question, in plain language")]

# The SymPy tools
Expression = Annotated[
    str, Field(max_length=MAX_TEXT, description="Math expression, e.g. 'x**3*sin(x)'; '^' also means power")
]
Variable = Annotated[str | None, Field(max_length=32, description="Variable name, e.g. 'x'; default: the only one")]
Digits = Annotated[int, Field(ge=1, le=1000, description="Significant digits of the decimal value")]
Polynomial = Annotated[str, Field(max_length=MAX_TEXT, description="Polynomial such as 'x**2 - 1', or an integer")]
Equations = Annotated[list[str], Field(
    min_length=1, max_length=10,
    description="Equations such as 'x**2 = 4' or 'x + y = 3' (a bare expression means '= 0'); "
    "one inequality such as 'x**2 < 4' also works",
)]
Unknowns = Annotated[list[str] | None, Field(max_length=10, description="Unknowns; default: all")]
Order = Annotated[int, Field(ge=1, le=50, description="Order of the derivative")]
LowerBound = Annotated[str | None, Field(max_length=200, description="Lower bound, for a definite integral")]
UpperBound = Annotated[str | None, Field(max_length=200, description="Upper bound ('oo' is infinity)")]
LimitPoint = Annotated[str, Field(max_length=200, description="Point approached; 'oo' is infinity")]
Direction = Annotated[Literal["+", "-", "+-"], Field(description="'+' from above, '-' from below")]
SeriesPoint = Annotated[str, Field(max_length=200, description="Expansion point")]
SeriesOrder = Annotated[int, Field(ge=1, le=50, description="Terms up to (but excluding) this power")]
FirstIndex = Annotated[str, Field(max_length=200, description="First index")]
LastIndex = Annotated[str, Field(max_length=200, description="Last index; 'oo' for an infinite series")]
Matrix = Annotated[str, Field(max_length=MAX_TEXT, description="Matrix as nested lists, e.g. '[[1, 2], [3, 4]]'")]

# run_eval and optimize_domain
Split = Annotated[Literal["train", "dev", "holdout"], Field(description="Gold-set split")]
Limit = Annotated[int | None, Field(ge=1, le=100_000, description="Score only the first N items")]
Threads = Annotated[int, Field(ge=1, le=16, description="Items evaluated at once")]
GoldsetPath = Annotated[str | None, Field(
    max_length=4096,
    description="Absolute path of a JSONL file in the gold-set format, instead of the split; it must lie inside "
    "the folders the server allows for gold sets (by default its gold sets dir and demo corpus)",
)]
WriteReceipt = Annotated[bool, Field(description="Write a receipt under receipts/")]
Optimizer = Annotated[Literal["bootstrap", "bootstrap_rs", "mipro", "gepa"], Field(
    description="bootstrap: BootstrapFewShot; bootstrap_rs: with random search; mipro: MIPROv2; "
    "gepa: GEPA with the local model reflecting on textual feedback",
)]
Budget = Annotated[Literal["light", "medium", "heavy"], Field(description="Optimizer effort")]
TrainLimit = Annotated[int | None, Field(ge=1, description="Use only the first N train items")]
DevLimit = Annotated[int | None, Field(ge=1, description="Use only the first N dev items")]
HoldoutLimit = Annotated[int | None, Field(ge=1, description="Score only the first N holdout items")]
Seed = Annotated[int, Field(description="Optimizer seed")]
FromUsage = Annotated[bool, Field(
    description="Also train on answers users rated (rate_answer): confirmed answers, corrections and, for the "
    "router, misroutes; only ever as train items, so the gate and the holdout stay as they are",
)]
Wait = Annotated[bool, Field(
    description="Wait for the result, with progress notifications (cancelling the call cancels the job); "
    "false returns the job id at once (poll optimization_status)",
)]
JobId = Annotated[str, Field(max_length=64, description="Id returned by optimize_domain")]
Version = Annotated[str, Field(
    max_length=32, description="A version such as 'v2', or 'base' for the uncompiled program"
)]

# rate_answer
AnswerId = Annotated[str, Field(max_length=64, description="The answer's id: the 'id' field of the ask_expert answer")]
Verdict = Literal["correct", "wrong"]
Correction = Annotated[str | None, Field(
    max_length=20_000, description="For a wrong answer: the right answer (for code, the right code)"
)]


class ExpertNames:
    """The `domain` argument types, listing a registry's experts (and the router, where it has a program).

    A server builds these from its registry, so an expert declared in a file appears in every tool
    schema without an edit here.

    Attributes:
        experts: The registry's expert names, in order.
        Expert: `Literal` of the expert names (ask_expert, rate_answer).
        Program: `Literal` of "router" and the expert names (run_eval, optimize_domain, rollback_program).

    Example:
        >>> from pydantic import TypeAdapter
        >>> names = ExpertNames(("math", "code", "general", "science"))
        >>> TypeAdapter(names.Program).json_schema()["enum"]
        ['router', 'math', 'code', 'general', 'science']
    """

    def __init__(self, experts: tuple[str, ...]) -> None:
        self.experts = experts
        # Built at run time from the registry: a type checker cannot see the values, the schema can.
        self.Expert: Any = Literal[experts]  # type: ignore[valid-type]
        self.Program: Any = Literal[("router", *experts)]  # type: ignore[valid-type]
