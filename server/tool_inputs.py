"""One Pydantic model per MCP tool input. Field descriptions become the tools' JSON Schema."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

MAX_TEXT = 5000  # mirrors tools.parse.MAX_INPUT_CHARS; longer inputs fail schema validation early

Expression = Field(max_length=MAX_TEXT, description="Math expression, e.g. 'x**3*sin(x)'; '^' also means power")
Variable = Field(default=None, max_length=32, description="Variable name, e.g. 'x'; default: the only one")
Matrix = Field(max_length=MAX_TEXT, description="Matrix as nested lists, e.g. '[[1, 2], [3, 4]]'")


class AskExpert(BaseModel):
    question: str = Field(max_length=100_000, description="The question, in plain language")
    domain: Literal["math", "code", "general"] | None = Field(
        default=None, description="Expert to use; omit to let the router choose"
    )


class Evaluate(BaseModel):
    expression: str = Expression
    digits: int = Field(default=15, ge=1, le=1000, description="Significant digits of the decimal value")


class Simplify(BaseModel):
    expression: str = Expression


class Expand(BaseModel):
    expression: str = Expression


class Factor(BaseModel):
    expression: str = Field(max_length=MAX_TEXT, description="Polynomial such as 'x**2 - 1', or an integer")


class Solve(BaseModel):
    equations: list[str] = Field(
        min_length=1, max_length=10,
        description="Equations such as 'x**2 = 4' or 'x + y = 3' (a bare expression means '= 0'); "
        "one inequality such as 'x**2 < 4' also works",
    )
    variables: list[str] | None = Field(default=None, max_length=10, description="Unknowns; default: all")


class Differentiate(BaseModel):
    expression: str = Expression
    variable: str | None = Variable
    order: int = Field(default=1, ge=1, le=50, description="Order of the derivative")


class Integrate(BaseModel):
    expression: str = Expression
    variable: str | None = Variable
    lower: str | None = Field(default=None, max_length=200, description="Lower bound, for a definite integral")
    upper: str | None = Field(default=None, max_length=200, description="Upper bound ('oo' is infinity)")


class Limit(BaseModel):
    expression: str = Expression
    variable: str | None = Variable
    point: str = Field(default="0", max_length=200, description="Point approached; 'oo' is infinity")
    direction: Literal["+", "-", "+-"] = Field(default="+-", description="'+' from above, '-' from below")


class Series(BaseModel):
    expression: str = Expression
    variable: str | None = Variable
    point: str = Field(default="0", max_length=200, description="Expansion point")
    order: int = Field(default=6, ge=1, le=50, description="Terms up to (but excluding) this power")


class Summation(BaseModel):
    expression: str = Expression
    variable: str | None = Variable
    lower: str = Field(default="1", max_length=200, description="First index")
    upper: str = Field(default="n", max_length=200, description="Last index; 'oo' for an infinite series")


class MatrixInput(BaseModel):
    matrix: str = Matrix


class RunEval(BaseModel):
    domain: Literal["math", "code", "general", "router"] = Field(description="Expert (or the router) to score")
    split: Literal["train", "dev", "holdout"] = Field(default="holdout", description="Gold-set split")
    limit: int | None = Field(default=None, ge=1, le=100_000, description="Score only the first N items")
    threads: int = Field(default=1, ge=1, le=16, description="Items evaluated at once")
    goldset_path: str | None = Field(
        default=None, max_length=4096,
        description="Absolute path of a JSONL file in the gold-set format, instead of the split; it must lie inside "
        "the folders the server allows for gold sets (by default its gold sets dir and demo corpus)",
    )
    write_receipt: bool = Field(default=True, description="Write a receipt under receipts/")


class OptimizeDomain(BaseModel):
    domain: Literal["math", "code", "general", "router"] = Field(description="Program to optimize")
    optimizer: Literal["bootstrap", "bootstrap_rs", "mipro", "gepa"] = Field(
        default="bootstrap",
        description="bootstrap: BootstrapFewShot; bootstrap_rs: with random search; mipro: MIPROv2; "
        "gepa: GEPA with the local model reflecting on textual feedback",
    )
    budget: Literal["light", "medium", "heavy"] = Field(default="light", description="Optimizer effort")
    train_limit: int | None = Field(default=None, ge=1, description="Use only the first N train items")
    dev_limit: int | None = Field(default=None, ge=1, description="Use only the first N dev items")
    holdout_limit: int | None = Field(default=None, ge=1, description="Score only the first N holdout items")
    seed: int = Field(default=0, description="Optimizer seed")
    threads: int = Field(default=1, ge=1, le=16, description="Items evaluated at once")
    from_usage: bool = Field(
        default=False, description="Also train on answers users rated (rate_answer): confirmed answers, corrections "
        "and, for the router, misroutes; only ever as train items, so the gate and the holdout stay as they are",
    )
    wait: bool = Field(
        default=True,
        description="Wait for the result, with progress notifications (cancelling the call cancels the job); "
        "false returns the job id at once (poll optimization_status)",
    )


class JobId(BaseModel):
    job_id: str = Field(max_length=64, description="Id returned by optimize_domain")


class Rollback(BaseModel):
    domain: Literal["math", "code", "general", "router"]
    version: str = Field(max_length=32, description="A version such as 'v2', or 'base' for the uncompiled program")


Verdict = Literal["correct", "wrong"]


class RateAnswer(BaseModel):
    id: str = Field(max_length=64, description="The answer's id: the 'id' field of the ask_expert answer")
    verdict: Verdict = Field(description="correct or wrong")
    correction: str | None = Field(
        default=None, max_length=20_000, description="For a wrong answer: the right answer (for code, the right code)"
    )
    domain: Literal["math", "code", "general"] | None = Field(
        default=None, description="The expert the question should have gone to, when it went to the wrong one"
    )


class ToolInputs:
    """The input models whose `domain` lists a registry's experts (and the router, where it has a program).

    The classes above stand for the built-in experts; a server derives these from its registry, so an
    expert declared in a file appears in every tool schema without an edit here.

    Example:
        >>> from sme_mcp.experts.registry import ExpertRegistry
        >>> inputs = ToolInputs(ExpertRegistry.builtin().names)
        >>> inputs.AskExpert.model_json_schema()["properties"]["domain"]["anyOf"][0]["enum"]
        ['math', 'code', 'general']
    """

    def __init__(self, experts: tuple[str, ...]) -> None:
        from pydantic import create_model

        expert = Literal[experts]  # type: ignore[valid-type]
        program = Literal[("router", *experts)]  # type: ignore[valid-type]

        def derived(base: type[BaseModel], annotation: Any) -> type[BaseModel]:
            field = base.model_fields["domain"]
            return create_model(base.__name__, __base__=base, __doc__=base.__doc__,
                                domain=(annotation, field))  # type: ignore[call-overload]

        self.AskExpert = derived(AskExpert, expert | None)
        self.RunEval = derived(RunEval, program)
        self.OptimizeDomain = derived(OptimizeDomain, program)
        self.Rollback = derived(Rollback, program)
        self.RateAnswer = derived(RateAnswer, expert | None)
