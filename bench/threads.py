"""llama-server decode and prompt speed at a given -t, on our own supervised `LocalServer`.

Blocks run one after another (never two llama-servers of ours at once), e.g. -t 1, -t 2, -t 1:
repeating the first block shows how much the machine's load drifted meanwhile.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from common import scratch_dir, summary

from sme_mcp.config.settings import LocalServerSettings, Settings
from sme_mcp.server.local_lm import LocalServer

TOPICS = ("binary search", "a linked list", "merge sort", "a stack", "quick sort", "a hash map", "a queue", "heap sort")


def measure_threads(blocks: list[int], reps: int, max_tokens: int = 64, budget_s: float = 150.0) -> dict[str, Any]:
    """Decode and prompt tokens/s per block; every request asks for a long answer, cut at max_tokens.

    A block stops early (fewer requests) once it has taken `budget_s`: a collapsed setting can decode
    at ~1 token/s, and the measurement only needs to show that, not to wait for it.
    """
    out = []
    n = 0
    for threads in blocks:
        settings = Settings()
        local_settings = LocalServerSettings(**{**settings.local.model_dump(), "threads": threads, "parallel": 1})
        with scratch_dir(f"t{threads}") as data:
            local = LocalServer(local_settings, settings.cache_dir, data / "logs")
            local.start()
            try:
                base = local.base_url(wait=local_settings.startup_timeout)
                decode, prompt = [], []
                started = time.monotonic()
                with httpx.Client(timeout=600) as http:
                    for _ in range(reps):
                        if decode and time.monotonic() - started > budget_s:
                            break
                        topic = TOPICS[n % len(TOPICS)]
                        n += 1
                        resp = http.post(f"{base}/chat/completions", json={
                            "model": "local", "temperature": 0.0, "max_tokens": max_tokens,
                            "messages": [{"role": "user", "content": f"Explain {topic} in detail, with a Python "
                                          f"implementation and its complexity. (request {n})"}],
                        })
                        resp.raise_for_status()
                        timings = resp.json()["timings"]
                        decode.append(timings["predicted_per_second"])
                        prompt.append(timings["prompt_per_second"])
            finally:
                local.stop()
        out.append({"threads": threads, "decode_tokens_per_s": summary(decode), "prompt_tokens_per_s": summary(prompt),
                    "max_tokens": max_tokens})
        print(f"  -t {threads}: decode {out[-1]['decode_tokens_per_s']['p50']} tok/s")
    return {"blocks": out, "order": blocks}
