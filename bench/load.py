"""Load over streamable HTTP: 200 concurrent SymPy calls and 16 concurrent ask_expert calls.

Checks every answer against its own expected value (nothing lost or mixed up) and reports latency
percentiles and throughput. By default the asks are arithmetic (exact fast path); `--lm` sends 16
general questions to the local model instead (slow: one llama-server slot answers them in turn).

    .venv/bin/python bench/load.py [--lm]     # prints a table, writes bench/results/load.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import anyio
from mcp import Client

ROOT = Path(__file__).resolve().parents[1]
SME_MCP = str(Path(sys.executable).with_name("sme-mcp"))
COUNTRIES = ["France", "Italy", "Spain", "Japan", "Egypt", "Peru", "Canada", "Kenya", "Norway", "Chile",
             "India", "Greece", "Poland", "Cuba", "Ghana", "Nepal"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


async def run(url: str, lm: bool) -> dict:
    latencies: dict[str, list[float]] = {"sympy": [], "ask": []}
    wrong: list[str] = []

    async with Client(url) as client:
        async def timed(kind: str, tool: str, args: dict, check) -> None:
            t = time.perf_counter()
            out = await client.call_tool(tool, args)
            latencies[kind].append((time.perf_counter() - t) * 1000)
            if out.is_error or not check(out.structured_content):
                wrong.append(f"{tool} {args}: {out.content[0].text[:120] if out.is_error else out.structured_content}")

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(timed, "sympy", "evaluate", {"expression": f"{i}**3 + {i}/7"},
                              lambda r, i=i: Fraction(r["result"]) == Fraction(i**3) + Fraction(i, 7))
            for i in range(16):
                if lm:
                    country = COUNTRIES[i]
                    tg.start_soon(timed, "ask", "ask_expert",
                                  {"question": f"Which continent is {country} in?", "domain": "general"},
                                  lambda r: bool(r["answer"]))
                else:
                    tg.start_soon(timed, "ask", "ask_expert", {"question": f"What is {i} * 1000 + {i}?"},
                                  lambda r, i=i: r["answer"] == str(i * 1001))
        wall = time.perf_counter() - started
    return {
        "wall_s": round(wall, 2), "calls": 216, "wrong_or_lost": wrong,
        "throughput_calls_per_s": round(216 / wall, 1),
        "sympy_ms": {"n": len(latencies["sympy"]), "p50": pct(latencies["sympy"], 0.5),
                     "p95": pct(latencies["sympy"], 0.95), "max": round(max(latencies["sympy"]), 1)},
        "ask_ms": {"n": len(latencies["ask"]), "p50": pct(latencies["ask"], 0.5), "p95": pct(latencies["ask"], 0.95),
                   "max": round(max(latencies["ask"]), 1), "kind": "local LM (general)" if lm else "fast path"},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm", action="store_true", help="ask the local model instead of arithmetic")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tempfile.mkdtemp(prefix="sme-load-")
    cmd = [SME_MCP, "serve", "--transport", "http", "--port", str(port)] + ([] if args.lm else ["--no-local"])
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, env={**os.environ, "SME_DATA_DIR": data})
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        load_before = os.getloadavg()
        result = anyio.run(run, f"http://127.0.0.1:{port}/mcp", args.lm)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    result["conditions"] = {"loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                            "cpu_count": os.cpu_count(), "sympy_workers": 2, "transport": "streamable HTTP"}
    out = ROOT / "bench" / "results" / ("load_lm.json" if args.lm else "load.json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{result['calls']} concurrent calls in {result['wall_s']} s ({result['throughput_calls_per_s']} calls/s); "
          f"lost or wrong: {len(result['wrong_or_lost'])}")
    print(f"evaluate   p50 {result['sympy_ms']['p50']} ms  p95 {result['sympy_ms']['p95']} ms  (n=200)")
    print(f"ask_expert p50 {result['ask_ms']['p50']} ms  p95 {result['ask_ms']['p95']} ms  (n=16, "
          f"{result['ask_ms']['kind']})")
    print(f"wrote {out.relative_to(ROOT)}")
    return 1 if result["wrong_or_lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
