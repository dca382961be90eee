"""SymPy tool latency: the same operations over stdio, over streamable HTTP, through the worker pool
in-process, and as the raw `sympy_ops` function in-process (the pure compute floor).

Calls are sequential (latency, not throughput) and interleaved across the four paths. Each call gets
a slightly different input so SymPy's own cache inside a worker cannot make repeated calls look
faster than real ones.

Usage:
    .venv/bin/python bench/sympy_latency.py [--calls 40]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from common import (
    SME_MCP,
    conditions,
    finish,
    http_server,
    print_table,
    scratch_dir,
    server_env,
    summary,
    write_result,
)
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from sme_mcp.tools.sympy_ops import OPERATIONS
from sme_mcp.tools.worker import SympyWorkerPool

WARMUP = 3


def inputs(op: str, i: int) -> dict[str, Any]:
    """The i-th input of an operation: same shape and cost every time, different numbers."""
    k = i + 2
    return {
        "evaluate": {"expression": f"{k}/3 + sqrt({k}) * pi"},
        "differentiate": {"expression": f"x**3*sin({k}*x)"},
        "integrate": {"expression": f"x**2*exp({k}*x)"},
        "solve": {"equations": [f"x**2 - {k + 1}*x + {k} = 0"]},
    }[op]


OPS = ("evaluate", "differentiate", "integrate", "solve")


Call = Callable[[str, dict[str, Any]], Awaitable[Any]]


async def time_paths(paths: dict[str, Call], n: int) -> dict[str, dict[str, list[float]]]:
    """Times every path on the same inputs, interleaved call by call (rotating the order), so a load
    spike on this shared machine lands on all paths alike instead of on whichever ran then."""
    times: dict[str, dict[str, list[float]]] = {name: {op: [] for op in OPS} for name in paths}
    names = list(paths)
    for op in OPS:
        for i in range(WARMUP):
            for name in names:
                await paths[name](op, inputs(op, 10_000 + i))
        for i in range(n):
            for k in range(len(names)):
                name = names[(i + k) % len(names)]
                started = time.perf_counter()
                await paths[name](op, inputs(op, i))
                times[name][op].append((time.perf_counter() - started) * 1000)
    return times


def tool_call(client: Client) -> Call:
    async def call(op: str, kwargs: dict[str, Any]) -> Any:
        result = await client.call_tool(op, kwargs)
        if result.is_error:
            raise RuntimeError(f"{op} failed: {result.content[0].text}")
        return result

    return call


def blocking(fn: Callable[..., Any]) -> Call:
    # Run inline, not in a thread: nothing else is in flight, and a thread hop would add its own cost.
    async def call(op: str, kwargs: dict[str, Any]) -> Any:
        return fn(op, kwargs)

    return call


async def measure(env: dict[str, str], url: str, pool: SympyWorkerPool, n: int) -> dict[str, dict[str, list[float]]]:
    params = StdioServerParameters(command=SME_MCP, args=["serve", "--no-local"], env=env)
    with open(os.devnull, "w") as devnull:
        async with Client(stdio_client(params, errlog=devnull)) as stdio, Client(url) as http:
            return await time_paths({
                "raw": blocking(lambda op, kw: OPERATIONS[op](**kw)),
                "pool": blocking(lambda op, kw: pool.run(op, **kw)),
                "stdio": tool_call(stdio),
                "http": tool_call(http),
            }, n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    cond = conditions(f"{args.calls} sequential calls per operation and path after {WARMUP} warm-up calls, "
                      "interleaved across paths; servers run with --no-local; shared 2-core machine with other "
                      "agents and two baseline evaluations running")
    sys.set_int_max_str_digits(100_000)
    pool = SympyWorkerPool(size=2, timeout=10.0, memory_mb=1024)  # the server's defaults
    try:
        with scratch_dir("sympy") as data:
            env = server_env(data)
            with http_server("--no-local", env=env, log=data / "server.log") as url:
                paths = anyio.run(measure, env, url, pool, args.calls)
    finally:
        pool.close()

    body: dict[str, Any] = {"benchmark": "sympy_latency", "unit": "ms", "conditions": finish(cond),
                            "paths": {p: {op: summary(t) for op, t in ops.items()} for p, ops in paths.items()},
                            "overhead": {}}
    rows = []
    for op in OPS:
        pool_p50 = body["paths"]["pool"][op]["p50"]
        body["overhead"][op] = {
            t: {"ratio_p50": round(body["paths"][t][op]["p50"] / pool_p50, 2),
                "added_ms_p50": round(body["paths"][t][op]["p50"] - pool_p50, 2)}
            for t in ("stdio", "http")
        }
        ratios = [f"{body['overhead'][op][t]['ratio_p50']}x" for t in ("stdio", "http")]
        rows.append([op] + [f"{body['paths'][p][op]['p50']} / {body['paths'][p][op]['p95']}" for p in paths] + ratios)
    print_table(["operation"] + [f"{p} p50/p95 ms" for p in paths] + ["stdio/pool", "http/pool"], rows)
    print(f"wrote {write_result('sympy_latency', body)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
