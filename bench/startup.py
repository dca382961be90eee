"""Startup benchmark: time from launching a server to its answer to `tools/list` over stdio.

Three servers, run round-robin so a load spike hits all of them alike:
  - minimal: bench/minimal_server.py, one tool (the floor: Python + the MCP SDK);
  - no-local: `sme-mcp serve --no-local` (no LM);
  - local: `sme-mcp serve`, which starts loading the local model in the background; that must not
    delay tools/list. After timing, list_experts records the LM's state (it should still be loading).

Usage:
    .venv/bin/python bench/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import anyio
from common import (
    REPO,
    SME_MCP,
    conditions,
    finish,
    llama_server_count,
    print_table,
    scratch_dir,
    server_env,
    summary,
    write_result,
)
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

SERVERS: dict[str, list[str]] = {
    "minimal": [sys.executable, str(REPO / "bench" / "minimal_server.py")],
    "no-local": [SME_MCP, "serve", "--no-local"],
    "local": [SME_MCP, "serve"],
}


async def time_once(name: str, env: dict[str, str]) -> dict:
    command, *args = SERVERS[name]
    params = StdioServerParameters(command=command, args=args, env=env)
    with open(os.devnull, "w") as devnull:
        started = time.perf_counter()
        async with Client(stdio_client(params, errlog=devnull)) as client:
            tools = await client.list_tools()
            elapsed = time.perf_counter() - started
            lm_state = None
            if name == "local":
                listing = await client.call_tool("list_experts", {})
                lm_state = (listing.structured_content.get("local_lm") or {}).get("state")
    return {"seconds": elapsed, "tools": len(tools.tools), "lm_state_at_list": lm_state}


def wait_llama_servers(baseline: int, timeout: float = 30.0) -> None:
    # The next run must not share the CPU with the previous run's llama-server while it shuts down.
    deadline = time.monotonic() + timeout
    while llama_server_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    cond = conditions(f"median of {args.runs} runs per server, round-robin, after one discarded warm-up run each; "
                      "shared 2-core machine with other agents and two baseline evaluations running")
    baseline = llama_server_count()
    runs: dict[str, list[dict]] = {name: [] for name in SERVERS}
    with scratch_dir("startup") as data:
        env = server_env(data)
        for round_no in range(args.runs + 1):
            for name in SERVERS:
                result = anyio.run(time_once, name, env)
                wait_llama_servers(baseline)
                if round_no > 0:  # round 0 warms the disk cache for every server
                    runs[name].append(result)
                    print(f"run {round_no} {name}: {result['seconds'] * 1000:.0f} ms", file=sys.stderr)
    body = {"benchmark": "startup", "unit": "ms", "conditions": finish(cond), "servers": {}}
    for name, results in runs.items():
        body["servers"][name] = {
            "command": " ".join(Path(c).name if i == 0 else os.path.relpath(c, REPO) if c.startswith(str(REPO)) else c
                                for i, c in enumerate(SERVERS[name])),
            "tools": results[0]["tools"],
            "ms": summary([r["seconds"] * 1000 for r in results], 1),
            "runs_ms": [round(r["seconds"] * 1000, 1) for r in results],
            "lm_state_at_list": sorted({r["lm_state_at_list"] for r in results if r["lm_state_at_list"]}),
        }
    floor = body["servers"]["minimal"]["ms"]["p50"]
    rows = [[name, s["tools"], s["ms"]["p50"], s["ms"]["min"], s["ms"]["max"], f"{s['ms']['p50'] / floor:.2f}x",
             ",".join(s["lm_state_at_list"]) or None] for name, s in body["servers"].items()]
    print_table(["server", "tools", "median ms", "min ms", "max ms", "vs minimal", "LM state at list"], rows)
    print(f"wrote {write_result('startup', body)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
