"""llama-server thread and polling settings, idle and beside a busy neighbour, on our supervised server.

For each setting a block of requests alternates two long system prompts (as the router and an
expert do), so it also shows whether the server's prompt cache restores each prefix. Each block
runs once on an idle machine and once while a neighbour process keeps one core busy. Blocks run
one after another, never two llama-servers of ours at once.

    .venv/bin/python bench/server_settings.py            # writes bench/results/server_settings.json
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
from common import conditions, finish, scratch_dir, summary, write_result

from sme_mcp.config.settings import LocalServerSettings, Settings
from sme_mcp.server.adaptive_local import AdaptiveLocal
from sme_mcp.server.local_lm import LocalServer

SETTINGS = {
    "-t 1": {"threads": 1, "threads_batch": None, "extra_args": []},
    "-t 2": {"threads": 2, "threads_batch": None, "extra_args": []},
    "-t 2 --poll 0": {"threads": 2, "threads_batch": None, "extra_args": ["--poll", "0"]},
    "-t 1 -tb 2": {"threads": 1, "threads_batch": 2, "extra_args": []},
    "-t 1 -tb 2 --poll 0": {"threads": 1, "threads_batch": 2, "extra_args": ["--poll", "0"]},
    # Both of the above side by side, each request sent to the one the neighbours' load calls for
    # (server/adaptive_local.py, the default on 2-4 cores).
    "adaptive": {"adaptive": True, "extra_args": []},
}
SYSTEM_A = ("You are a careful assistant that routes questions. " * 60).strip()
SYSTEM_B = ("You answer questions from the given passages, citing them. " * 50).strip()
QUESTIONS = ("What is binary search?", "Who wrote Hamlet?", "What is a linked list?", "Why is the sky blue?",
             "What is a hash map?", "Who painted the Mona Lisa?")


def busy_neighbour() -> int:
    """The pid of a process that keeps one core busy until it is killed. It is not a child of this one (its shell
    exits and init adopts it), as another program would not be: the adaptive layout discounts its own children."""
    out = subprocess.run(["sh", "-c", f"{sys.executable} -c 'while True: pass' >/dev/null 2>&1 & echo $!"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def measure(name: str, spec: dict[str, Any], busy: bool, reps: int, max_tokens: int) -> dict[str, Any]:
    settings = Settings()
    adaptive = spec.get("adaptive", False)
    fixed = {k: v for k, v in spec.items() if k != "adaptive"}
    local_settings = LocalServerSettings(**{**settings.local.model_dump(), **fixed, "parallel": 1})
    rows = []
    neighbour = None
    with scratch_dir(name.replace(" ", "")) as data:
        local: LocalServer | AdaptiveLocal
        if adaptive:
            local = AdaptiveLocal(local_settings, settings.cache_dir, data / "logs")
        else:
            local = LocalServer(local_settings, settings.cache_dir, data / "logs")
        local.start()
        try:
            for server in getattr(local, "servers", {"": local}).values():
                server.base_url(wait=local_settings.startup_timeout)
            # Loading used the cores: let the neighbours' load settle (the adaptive sampler averages over 3 s).
            time.sleep(4.0)
            neighbour = busy_neighbour() if busy else None
            time.sleep(4.0 if busy else 0)
            with httpx.Client(timeout=600) as http:
                for i in range(reps):
                    system = SYSTEM_A if i % 2 == 0 else SYSTEM_B
                    served_by, base = (local.ready_deployments()[0] if isinstance(local, AdaptiveLocal)
                                       else (name, local.base_url()))
                    t = time.perf_counter()
                    question = QUESTIONS[i % len(QUESTIONS)] + " Explain in detail."
                    resp = http.post(f"{base}/chat/completions", json={
                        "model": "local", "temperature": 0.0, "max_tokens": max_tokens,
                        "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
                    })
                    resp.raise_for_status()
                    timings = resp.json()["timings"]
                    rows.append({"served_by": served_by, "wall_s": round(time.perf_counter() - t, 2),
                                 "prompt_n": timings.get("prompt_n"),
                                 "cache_n": timings.get("cache_n"), "prompt_per_s": timings["prompt_per_second"],
                                 "predicted_n": timings.get("predicted_n"),
                                 "predicted_per_s": timings["predicted_per_second"]})
        finally:
            if neighbour is not None:
                os.kill(neighbour, signal.SIGKILL)
            local.stop()
    # The first request of each prompt family reads its whole prompt: prompt speed comes from those.
    first_reads = [r["prompt_per_s"] for r in rows[:2]]
    return {"setting": name, "busy_neighbour": busy, "requests": rows,
            "decode_tokens_per_s": summary([r["predicted_per_s"] for r in rows]),
            "prompt_tokens_per_s_first_reads": summary(first_reads),
            "prompt_tokens_evaluated_on_repeats": [r["prompt_n"] for r in rows[2:]],
            "wall_s": summary([r["wall_s"] for r in rows])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--only", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    cond = conditions(args.note)
    blocks = []
    for busy in (False, True):
        for name in args.only:
            block = measure(name, SETTINGS[name], busy, args.reps, args.max_tokens)
            blocks.append(block)
            print(f"{name:22} {'busy' if busy else 'idle'}: decode p50 {block['decode_tokens_per_s']['p50']} tok/s, "
                  f"prompt {block['prompt_tokens_per_s_first_reads']['p50']} tok/s, repeats evaluated "
                  f"{block['prompt_tokens_evaluated_on_repeats']}", flush=True)
    write_result("server_settings", {"conditions": finish(cond), "blocks": blocks})


if __name__ == "__main__":
    main()
