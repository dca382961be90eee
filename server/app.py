"""The MCP server: expert tools plus the SymPy tools, each taking one Pydantic input model."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from sme_mcp.experts.answer import ExpertAnswer
from sme_mcp.experts.lm import NoBackendError
from sme_mcp.experts.service import ExpertInfo, ExpertService, InvalidQuestion
from sme_mcp.server import tool_inputs as ti
from sme_mcp.tools.worker import ComputeError

log = logging.getLogger(__name__)

VERSION = "0.1.0"
INSTRUCTIONS = (
    "Ask questions with ask_expert (math, code or general; the router picks when no domain is given). "
    "For exact symbolic math call the SymPy tools directly: evaluate, simplify, expand, factor, solve, "
    "differentiate, integrate, limit, series, summation, matrix_determinant, matrix_inverse, matrix_eigenvalues."
)
EXACT = ToolAnnotations(readOnlyHint=True, openWorldHint=False, idempotentHint=True, destructiveHint=False)


class SympyResult(BaseModel):
    result: str = Field(description="Exact result in SymPy syntax")
    latex: str = Field(description="The same result as LaTeX")
    numeric: str | None = Field(default=None, description="Decimal value, when the result is a number")


class ExpertList(BaseModel):
    experts: list[ExpertInfo]
    local_lm: dict[str, Any] | None = Field(default=None, description="State of the supervised llama-server")


def add_model_tool(
    server: MCPServer,
    name: str,
    model: type[BaseModel],
    handler: Callable[[BaseModel], Awaitable[Any]],
    returns: type,
    description: str,
    annotations: ToolAnnotations | None = None,
) -> None:
    """Registers `handler` as a tool whose flat argument schema is the fields of `model`."""
    params = [
        inspect.Parameter(
            field_name, inspect.Parameter.KEYWORD_ONLY,
            # The FieldInfo carries description and constraints (max_length, ge/le) into the schema.
            annotation=Annotated[info.annotation, info],
            default=inspect.Parameter.empty if info.is_required() else info.default,
        )
        for field_name, info in model.model_fields.items()
    ]

    async def tool(**kwargs: Any) -> Any:
        return await handler(model(**kwargs))

    tool.__name__ = name
    tool.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    server.add_tool(tool, name=name, description=description, annotations=annotations)


def build_server(service: ExpertService, local_status: Callable[[], dict[str, Any]] | None = None) -> MCPServer:
    """Builds the MCP server around one `ExpertService` (shared with the CLI)."""
    server = MCPServer("sme-mcp", version=VERSION, instructions=INSTRUCTIONS)

    async def ask_expert(args: ti.AskExpert) -> ExpertAnswer:
        try:
            return await anyio.to_thread.run_sync(service.ask, args.question, args.domain, abandon_on_cancel=True)
        except (InvalidQuestion, NoBackendError, ComputeError) as exc:
            raise ToolError(str(exc)) from exc

    add_model_tool(
        server, "ask_expert", ti.AskExpert, ask_expert, ExpertAnswer,
        "Answer a question with the math, code or general expert (DSPy programs on a local LM). "
        "Returns the answer with the domain, how it was routed, confidence, reasoning, the backend that "
        "served it, latency and tools used.",
        ToolAnnotations(readOnlyHint=True, openWorldHint=False, destructiveHint=False),
    )

    async def list_experts(args: BaseModel) -> ExpertList:
        return ExpertList(experts=service.experts(), local_lm=local_status() if local_status else None)

    add_model_tool(
        server, "list_experts", _NoInput, list_experts, ExpertList,
        "List the experts (and the router): description, DSPy module, active program version, holdout "
        "score and backend chain; plus the state of the local LM server.",
        EXACT,
    )

    def sympy_tool(op: str, model: type[BaseModel], description: str) -> None:
        async def run(args: BaseModel) -> SympyResult:
            try:
                result = await anyio.to_thread.run_sync(lambda: service.pool.run(op, **args.model_dump()))
            except ComputeError as exc:
                raise ToolError(str(exc)) from exc
            return SympyResult(**result)

        add_model_tool(server, op, model, run, SympyResult, description + " Exact, via SymPy.", EXACT)

    sympy_tool("evaluate", ti.Evaluate, "Evaluate an expression exactly, with its decimal value.")
    sympy_tool("simplify", ti.Simplify, "Simplify an expression.")
    sympy_tool("expand", ti.Expand, "Expand products and powers in an expression.")
    sympy_tool("factor", ti.Factor, "Factor a polynomial, or an integer into primes.")
    sympy_tool("solve", ti.Solve, "Solve an equation, a system of equations, or one inequality.")
    sympy_tool("differentiate", ti.Differentiate, "Differentiate an expression (any order).")
    sympy_tool("integrate", ti.Integrate, "Integrate an expression, indefinite or definite.")
    sympy_tool("limit", ti.Limit, "Limit of an expression at a point or at infinity.")
    sympy_tool("series", ti.Series, "Taylor/Laurent series of an expression around a point.")
    sympy_tool("summation", ti.Summation, "Sum an expression over an index range, finite or infinite.")
    sympy_tool("matrix_determinant", ti.MatrixInput, "Determinant of a square matrix.")
    sympy_tool("matrix_inverse", ti.MatrixInput, "Inverse of a square matrix.")
    sympy_tool("matrix_eigenvalues", ti.MatrixInput, "Eigenvalues of a square matrix, with multiplicities.")
    return server


class _NoInput(BaseModel):
    pass
