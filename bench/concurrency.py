"""Concurrency: 1, 2 and 4 parallel `ask_expert` calls (explicit domain general, short distinct
questions) against servers started with SME_LOCAL__PARALLEL (llama-server -np) 1, 2 and 4; then
llama-server's decode speed at -t 1 versus -t 2 (SME_LOCAL__THREADS), measured A-B-A.

Every cell makes the same number of calls (in batches of its concurrency), so each has the same
number of latencies. Throughput is answers per minute of wall time over the whole cell.

Usage:
    .venv/bin/python bench/concurrency.py [--calls 4] [--parallel 1 2 4] [--concurrency 1 2 4]
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Any

import anyio
from common import conditions, finish, http_server, print_table, scratch_dir, server_env, summary, write_result
from lm_overhead import LlamaLog, questions, wait_ready
from mcp import Client
from threads import measure_threads

SLOT_CTX = re.compile(r"n_slots = (\d+), n_ctx_slot = (\d+)")


class Questions:
    """Hands out each question once per server, so no call can be answered from the DSPy cache (each
    server has a fresh data dir), while every server gets the same questions in the same order."""

    def __init__(self, items: list[str]):
        self.items, self.next = items, 0

    def take(self) -> str:
        self.next += 1
        return self.items[self.next - 1]


async def cell(client: Client, qs: Questions, log: LlamaLog, concurrency: int, calls: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []

    async def one() -> None:
        started = time.perf_counter()
        result = await client.call_tool("ask_expert", {"question": qs.take(), "domain": "general"})
        latencies.append(time.perf_counter() - started)
        if result.is_error:
            errors.append(result.content[0].text[:200])

    started = time.perf_counter()
    for _ in range(calls // concurrency):
        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(one)
    wall = time.perf_counter() - started
    lm = log.since_last()
    return {
        "concurrency": concurrency, "answers": len(latencies), "errors": errors, "wall_s": round(wall, 2),
        "answers_per_min": round(60 * len(latencies) / wall, 2), "latency_s": summary(latencies),
        "completion_tokens": lm["completion_tokens"],
        "aggregate_decode_tokens_per_s": round(lm["completion_tokens"] / wall, 2),
    }


async def run_server(url: str, log_path: Path, qs: Questions, levels: list[int], calls: int) -> dict[str, Any]:
    async with Client(url, read_timeout_seconds=900) as client:
        await wait_ready(client)
        log = LlamaLog(log_path)
        await client.call_tool("ask_expert", {"question": qs.take(), "domain": "general"})  # warm-up: imports DSPy
        log.since_last()
        cells = []
        for concurrency in levels:
            cells.append(await cell(client, qs, log, concurrency, calls))
            c = cells[-1]
            print(f"  concurrency {concurrency}: {c['answers_per_min']} answers/min, p50 {c['latency_s']['p50']} s")
    slots = SLOT_CTX.search(log_path.read_text(errors="replace"))
    return {"cells": cells, "n_ctx_slot": int(slots.group(2)) if slots else None}


def recommend(servers: dict[str, Any]) -> dict[str, Any]:
    """The -np default from the measurements: the most throughput at the highest concurrency, unless it
    buys less than 15 % over -np 1 (then keep 1: the whole context for one slot, lowest latency)."""
    def at_top(np_: str) -> float:
        return servers[np_]["cells"][-1]["answers_per_min"]

    best = max(servers, key=at_top)
    gain = at_top(best) / at_top("1") if "1" in servers and at_top("1") else None
    choice = best if gain is None or gain >= 1.15 else "1"
    return {"parallel": int(choice), "best_throughput_parallel": int(best),
            "gain_over_parallel_1": round(gain, 2) if gain else None,
            "rule": "highest answers/min at the highest concurrency, if at least 15% above -np 1; else -np 1"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4, help="calls per cell (a multiple of every concurrency)")
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--thread-reps", type=int, default=3)
    args = parser.parse_args()
    cond = conditions(f"{args.calls} ask_expert calls per cell (explicit domain general, distinct NQ-open questions), "
                      "the same questions in the same order for every server; threads at the default (cores-1), "
                      "ctx 8192 shared by the slots; one warm-up call per server; "
                      "shared 2-core machine with other agents and two baseline evaluations (two more llama-servers "
                      "at -t 1) running")
    items = questions(len(args.concurrency) * args.calls + 1)
    servers: dict[str, Any] = {}
    for parallel in args.parallel:
        print(f"-np {parallel}")
        with scratch_dir(f"np{parallel}") as data, http_server(
            env=server_env(data, SME_LOCAL__PARALLEL=str(parallel)), log=data / "server.log"
        ) as url:
            servers[str(parallel)] = anyio.run(run_server, url, data / "logs" / "llama-server.log",
                                               Questions(items), args.concurrency, args.calls)
    threads = measure_threads([1, 2, 1], args.thread_reps)
    body = {"benchmark": "concurrency", "conditions": finish(cond), "calls_per_cell": args.calls,
            "servers": servers, "recommendation": recommend(servers), "threads": threads}
    rows = [[np_, c["concurrency"], c["answers_per_min"], c["latency_s"]["p50"], c["latency_s"]["p95"],
             c["aggregate_decode_tokens_per_s"], len(c["errors"]), s["n_ctx_slot"]]
            for np_, s in servers.items() for c in s["cells"]]
    print_table(["-np", "concurrent", "answers/min", "p50 s", "p95 s", "decode tok/s", "errors", "ctx/slot"], rows)
    print(f"recommended SME_LOCAL__PARALLEL: {body['recommendation']['parallel']} ({body['recommendation']['rule']})")
    print_table(["-t", "block", "decode tok/s", "prompt tok/s"],
                [[b["threads"], i + 1, b["decode_tokens_per_s"]["p50"], b["prompt_tokens_per_s"]["p50"]]
                 for i, b in enumerate(threads["blocks"])])
    print(f"wrote {write_result('concurrency', body)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
