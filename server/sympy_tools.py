"""The SymPy tools, published directly: exact results computed by the restricted parser in worker processes.

Each tool is a typed function under the SDK's `@server.tool()`; its arguments' schemas come from
server/tool_inputs.py, and it calls one operation of the worker pool (tools/worker.py), which parses
with size and time bounds and never evaluates client text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from sme_mcp.server.tool_errors import reports_errors
from sme_mcp.server.tool_inputs import (
    Digits,
    Direction,
    Equations,
    Expression,
    FirstIndex,
    LastIndex,
    LimitPoint,
    LowerBound,
    Matrix,
    Order,
    Polynomial,
    SeriesOrder,
    SeriesPoint,
    Unknowns,
    UpperBound,
    Variable,
)
from sme_mcp.tools.worker import SympyWorkerPool

EXACT = ToolAnnotations(readOnlyHint=True, openWorldHint=False, idempotentHint=True, destructiveHint=False)
NAMES = (
    "evaluate", "simplify", "expand", "factor", "solve", "differentiate", "integrate", "limit", "series",
    "summation", "matrix_determinant", "matrix_inverse", "matrix_eigenvalues",
)


class SympyResult(BaseModel):
    result: str = Field(description="Exact result in SymPy syntax")
    latex: str = Field(description="The same result as LaTeX")
    numeric: str | None = Field(default=None, description="Decimal value, when the result is a number")


def register_sympy_tools(server: MCPServer, pool: SympyWorkerPool) -> None:
    """Adds the thirteen SymPy tools to `server`.

    Args:
        server: The MCP server.
        pool: The SymPy worker pool that computes (shared with the math expert).
    """
    # SymPy calls wait for a worker on threads of their own, as many as the pool has workers: a queue of them
    # never holds the threads (40, shared by anyio) that every other tool and resource runs on.
    threads = anyio.CapacityLimiter(max(1, getattr(pool, "size", 2)))

    async def compute(op: str, **arguments: Any) -> SympyResult:
        result = await anyio.to_thread.run_sync(lambda: pool.run(op, **arguments), limiter=threads)
        return SympyResult(**result)

    def exact(description: str) -> Callable[[Any], Any]:
        """The SDK's `@server.tool()`, with the SymPy tools' annotations."""
        return server.tool(description=description + " Exact, via SymPy.", annotations=EXACT)

    @exact("Evaluate an expression exactly, with its decimal value.")
    @reports_errors
    async def evaluate(expression: Expression, digits: Digits = 15) -> SympyResult:
        return await compute("evaluate", expression=expression, digits=digits)

    @exact("Simplify an expression.")
    @reports_errors
    async def simplify(expression: Expression) -> SympyResult:
        return await compute("simplify", expression=expression)

    @exact("Expand products and powers in an expression.")
    @reports_errors
    async def expand(expression: Expression) -> SympyResult:
        return await compute("expand", expression=expression)

    @exact("Factor a polynomial, or an integer into primes.")
    @reports_errors
    async def factor(expression: Polynomial) -> SympyResult:
        return await compute("factor", expression=expression)

    @exact("Solve an equation, a system of equations, or one inequality.")
    @reports_errors
    async def solve(equations: Equations, variables: Unknowns = None) -> SympyResult:
        return await compute("solve", equations=equations, variables=variables)

    @exact("Differentiate an expression (any order).")
    @reports_errors
    async def differentiate(expression: Expression, variable: Variable = None, order: Order = 1) -> SympyResult:
        return await compute("differentiate", expression=expression, variable=variable, order=order)

    @exact("Integrate an expression, indefinite or definite.")
    @reports_errors
    async def integrate(expression: Expression, variable: Variable = None, lower: LowerBound = None,
                        upper: UpperBound = None) -> SympyResult:
        return await compute("integrate", expression=expression, variable=variable, lower=lower, upper=upper)

    @exact("Limit of an expression at a point or at infinity.")
    @reports_errors
    async def limit(expression: Expression, variable: Variable = None, point: LimitPoint = "0",
                    direction: Direction = "+-") -> SympyResult:
        return await compute("limit", expression=expression, variable=variable, point=point, direction=direction)

    @exact("Taylor/Laurent series of an expression around a point.")
    @reports_errors
    async def series(expression: Expression, variable: Variable = None, point: SeriesPoint = "0",
                     order: SeriesOrder = 6) -> SympyResult:
        return await compute("series", expression=expression, variable=variable, point=point, order=order)

    @exact("Sum an expression over an index range, finite or infinite.")
    @reports_errors
    async def summation(expression: Expression, variable: Variable = None, lower: FirstIndex = "1",
                        upper: LastIndex = "n") -> SympyResult:
        return await compute("summation", expression=expression, variable=variable, lower=lower, upper=upper)

    @exact("Determinant of a square matrix.")
    @reports_errors
    async def matrix_determinant(matrix: Matrix) -> SympyResult:
        return await compute("matrix_determinant", matrix=matrix)

    @exact("Inverse of a square matrix.")
    @reports_errors
    async def matrix_inverse(matrix: Matrix) -> SympyResult:
        return await compute("matrix_inverse", matrix=matrix)

    @exact("Eigenvalues of a square matrix, with multiplicities.")
    @reports_errors
    async def matrix_eigenvalues(matrix: Matrix) -> SympyResult:
        return await compute("matrix_eigenvalues", matrix=matrix)
