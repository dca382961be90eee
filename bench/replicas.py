"""Replicas against threads against slots, on this machine, through the LiteLLM Router the experts use.

Each layout serves the same block of chat calls (a short system prompt, a question, up to
`--max-tokens` tokens) sent by `--concurrency` threads through `LMChain.run`, i.e. the Router
with the replicas as deployments of one model group:

- `1 x -t 2`: one llama-server, both cores for generation;
- `1 x -t 1 -tb 2`: one llama-server, the default (generation on one core, prompts on two);
- `1 x -t 2 -np 2`: one llama-server with two slots, so two calls run at once;
- `2 x -t 1`: two replicas (`SME_LOCAL__REPLICAS=2`), one core each.

Layouts run one after another, never two of ours at once. Figures: wall time of the block, calls
per minute, generated tokens per second summed over calls, and per-call latency (p50, p95).

    .venv/bin/python bench/replicas.py                 # writes bench/results/replicas.json
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

from common import conditions, finish, print_table, scratch_dir, summary, write_result

from sme_mcp.config.settings import LMSpec, Settings
from sme_mcp.experts.lm import LMChain
from sme_mcp.server.local_fleet import LocalFleet
from sme_mcp.server.local_lm import LocalServer

LAYOUTS: dict[str, dict[str, Any]] = {
    "1 x -t 2": {"replicas": 1, "threads": 2, "threads_batch": None, "parallel": 1},
    "1 x -t 1 -tb 2": {"replicas": 1, "threads": 1, "threads_batch": 2, "parallel": 1},
    "1 x -t 2 -np 2": {"replicas": 1, "threads": 2, "threads_batch": None, "parallel": 2},
    "2 x -t 1": {"replicas": 2, "threads": 1, "threads_batch": 1, "parallel": 1},
}
QUESTIONS = ("What is binary search?", "Who wrote Hamlet?", "What is a linked list?", "Why is the sky blue?",
             "What is a hash map?", "Who painted the Mona Lisa?", "What is recursion?", "What causes tides?")


def run_layout(name: str, layout: dict[str, Any], calls: int, concurrency: int, max_tokens: int) -> dict[str, Any]:
    import dspy

    settings = Settings()
    local_settings = settings.local.model_copy(update={**layout, "ctx_size": 4096 * layout["parallel"]})
    with scratch_dir(name.replace(" ", "")) as data:
        if layout["replicas"] > 1:
            local: Any = LocalFleet(local_settings, settings.cache_dir, data / "logs")
        else:
            local = LocalServer(local_settings, settings.cache_dir, data / "logs")
        local.start()
        try:
            started = time.monotonic()
            urls = local.base_urls(600) if hasattr(local, "base_urls") else [local.base_url(600)]
            while len(urls) < layout["replicas"] and time.monotonic() - started < 600:
                time.sleep(0.5)
                urls = local.base_urls(0)
            load_s = time.monotonic() - started
            chain = LMChain("general", [LMSpec(max_tokens=max_tokens)], local, cache=False,
                            router_settings=settings.lm_router)
            lm, _ = chain.first_available()

            def one(question: str) -> tuple[float, str | None]:
                t = time.perf_counter()
                with dspy.context(lm=lm):
                    _, served = chain.run(lambda: lm(messages=[
                        {"role": "system", "content": "Answer in a short paragraph."},
                        {"role": "user", "content": question}]))
                return time.perf_counter() - t, served.deployment

            one("Say hello.")  # warm-up: the first call pays for loading the model into memory
            history_start = len(lm.history)
            latencies: list[float] = []
            served_by: dict[str, int] = {}
            lock = threading.Lock()
            queue = [QUESTIONS[i % len(QUESTIONS)] + f" ({i})" for i in range(calls)]

            def worker() -> None:
                while True:
                    with lock:
                        if not queue:
                            return
                        question = queue.pop(0)
                    seconds, deployment = one(question)
                    with lock:
                        latencies.append(seconds)
                        key = (deployment or "?").split()[0]
                        served_by[key] = served_by.get(key, 0) + 1

            t0 = time.perf_counter()
            threads = [threading.Thread(target=worker) for _ in range(concurrency)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            tokens = [int((h.get("usage") or {}).get("completion_tokens") or 0) for h in lm.history[history_start:]]
        finally:
            local.stop()
    return {
        "layout": name, **layout, "load_s": round(load_s, 1), "calls": calls, "concurrency": concurrency,
        "wall_s": round(wall, 1), "calls_per_min": round(60 * calls / wall, 2),
        "generated_tok_per_s": round(sum(tokens) / wall, 2), "completion_tokens": sum(tokens),
        "latency_s": summary(latencies), "served_by": served_by,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--only", nargs="+", choices=list(LAYOUTS))
    args = parser.parse_args()
    cond = conditions(f"{os.cpu_count()} cores; layouts run one after another")
    rows = [run_layout(name, layout, args.calls, args.concurrency, args.max_tokens)
            for name, layout in LAYOUTS.items() if not args.only or name in args.only]
    body = {"conditions": finish(cond), "settings": vars(args), "layouts": rows}
    write_result("replicas", body)
    print_table(["layout", "wall s", "calls/min", "gen tok/s", "p50 s", "p95 s", "served by"],
                [[r["layout"], r["wall_s"], r["calls_per_min"], r["generated_tok_per_s"], r["latency_s"]["p50"],
                  r["latency_s"]["p95"], r["served_by"]] for r in rows])
    print(f"load before/after: {body['conditions']['loadavg_before']} / {body['conditions']['loadavg_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
