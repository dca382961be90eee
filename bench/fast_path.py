"""Exact arithmetic fast path: `ask_expert` on plain arithmetic, which never calls the model.

Timed over stdio against `sme-mcp serve --no-local` (so an answer from the model is impossible),
next to the same question through `ExpertService.ask` in-process (the floor without the protocol).

Usage:
    .venv/bin/python bench/fast_path.py [--calls 50]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import anyio
from common import SME_MCP, conditions, finish, print_table, scratch_dir, server_env, summary, write_result
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from sme_mcp.config.settings import Settings
from sme_mcp.experts.service import ExpertService

WARMUP = 3


def question(i: int) -> tuple[str, str]:
    """A distinct arithmetic question and its exact answer."""
    a, b, c = 100 + i, 37 + 2 * i, 7 * i + 1
    return f"What is {a} * {b} + {c}/{i + 2}?", _exact(a * b, c, i + 2)


def _exact(whole: int, num: int, den: int) -> str:
    from fractions import Fraction

    value = whole + Fraction(num, den)
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


async def over_stdio(env: dict[str, str], n: int) -> tuple[list[float], list[str]]:
    params = StdioServerParameters(command=SME_MCP, args=["serve", "--no-local"], env=env)
    times, problems = [], []
    with open(os.devnull, "w") as devnull:
        async with Client(stdio_client(params, errlog=devnull)) as client:
            for i in range(-WARMUP, n):
                text, expected = question(i + 1000 if i < 0 else i)
                started = time.perf_counter()
                result = await client.call_tool("ask_expert", {"question": text})
                elapsed = (time.perf_counter() - started) * 1000
                if i < 0:
                    continue
                times.append(elapsed)
                out = result.structured_content or {}
                if result.is_error or out.get("routed_by") != "fast_path" or out.get("answer") != expected:
                    problems.append(f"{text}: {out or result.content}")
    return times, problems


def in_process(data_dir: Any, n: int) -> list[float]:
    settings = Settings(data_dir=data_dir)
    settings.local.enabled = False
    service = ExpertService(settings, None)
    try:
        for i in range(WARMUP):
            service.ask(question(1000 + i)[0])
        times = []
        for i in range(n):
            started = time.perf_counter()
            service.ask(question(i)[0])
            times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        service.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    cond = conditions(f"{args.calls} sequential calls after {WARMUP} warm-up calls, distinct questions; server runs "
                      "with --no-local; shared 2-core machine with other agents and two baseline evaluations running")
    with scratch_dir("fastpath") as data:
        stdio_times, problems = anyio.run(over_stdio, server_env(data), args.calls)
        local_times = in_process(data, args.calls)
    body = {
        "benchmark": "fast_path", "unit": "ms", "conditions": finish(cond),
        "example": question(0)[0],
        "paths": {"stdio": summary(stdio_times), "in_process": summary(local_times)},
        "wrong_or_not_fast_path": problems,
    }
    rows = [[p, s["n"], s["p50"], s["p95"], s["max"]] for p, s in body["paths"].items()]
    print_table(["path", "calls", "p50 ms", "p95 ms", "max ms"], rows)
    print(f"answers not exact or not from the fast path: {len(problems)}")
    print(f"wrote {write_result('fast_path', body)}")
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
