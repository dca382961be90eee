"""What DSPy and MCP add on top of the model: one question sent straight to llama-server's OpenAI
endpoint, versus `ask_expert` with an explicit domain (router skipped), versus the routed path.

One `sme-mcp serve --transport http` with the local model runs for the whole benchmark; the direct
requests go to the very llama-server it supervises (its port comes from list_experts). Token counts
and decode speed of the ask_expert calls come from llama-server's own per-request timings in its
log. Every call uses a question no earlier call used, in a fresh data dir, so no DSPy cache hits.
"Prompt tokens" is the whole prompt; "evaluated" is what llama-server computed after reusing the
prefix it still had cached from the previous request (DSPy's long instructions mostly are).

Usage:
    .venv/bin/python bench/lm_overhead.py [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
from common import REPO, conditions, finish, http_server, print_table, scratch_dir, server_env, summary, write_result
from mcp import Client

PROMPT = re.compile(r"\|\s+prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens")
EVAL = re.compile(r"\|\s+eval time =\s*([\d.]+) ms /\s*(\d+) tokens")
RELEASE = re.compile(r"stop processing: n_tokens = (\d+)")


def questions(n: int) -> list[str]:
    """Real NQ-open questions from the general gold set's train split."""
    path = REPO / "goldsets" / "general" / "train.jsonl"
    items = [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines()[:n]]
    if len(items) < n:
        raise SystemExit(f"need {n} questions, {path} has {len(items)}")
    return items


class LlamaLog:
    """Reads the per-request timings llama-server logs after each request (prompt and decode)."""

    def __init__(self, path: Path):
        self.path, self.offset = path, path.stat().st_size if path.exists() else 0

    def since_last(self) -> dict[str, Any]:
        time.sleep(0.3)  # the timing lines are written just after the response
        with self.path.open("rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
            self.offset = f.tell()
        prompts = [(float(ms), int(n)) for ms, n in PROMPT.findall(text)]
        evals = [(float(ms), int(n)) for ms, n in EVAL.findall(text)]
        context = sum(int(n) for n in RELEASE.findall(text))  # whole prompt + answer, cached prefix included
        return {
            "lm_calls": len(evals),
            "prompt_tokens_total": context - sum(n for _, n in evals),
            "prompt_tokens": sum(n for _, n in prompts), "prompt_ms": sum(ms for ms, _ in prompts),
            "completion_tokens": sum(n for _, n in evals), "decode_ms": sum(ms for ms, _ in evals),
        }


async def wait_ready(client: Client, timeout: float = 600.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = await client.call_tool("list_experts", {})
        local = listing.structured_content["local_lm"]
        if local["state"] == "ready":
            return local
        if local["state"] == "failed":
            raise RuntimeError(f"local LM failed: {local['reason']}")
        await anyio.sleep(1.0)
    raise RuntimeError("local LM not ready in time")


async def direct(http: httpx.AsyncClient, base: str, question: str, log: LlamaLog) -> dict[str, Any]:
    started = time.perf_counter()
    resp = await http.post(f"{base}/v1/chat/completions", json={
        "model": "local", "messages": [{"role": "user", "content": question}], "temperature": 0.0, "max_tokens": 1024,
    })
    wall = time.perf_counter() - started
    resp.raise_for_status()
    body = resp.json()
    timings, usage = body.get("timings", {}), body.get("usage", {})
    log.since_last()  # consume this request's log lines so the next ask_expert reads only its own
    return {
        "wall_s": wall, "lm_calls": 1, "prompt_tokens_total": usage.get("prompt_tokens"),
        "prompt_tokens": timings.get("prompt_n"),
        "completion_tokens": usage.get("completion_tokens"), "prompt_ms": timings.get("prompt_ms"),
        "decode_ms": timings.get("predicted_ms"), "answer": body["choices"][0]["message"]["content"][:200],
    }


async def expert(client: Client, question: str, domain: str | None, log: LlamaLog) -> dict[str, Any]:
    started = time.perf_counter()
    result = await client.call_tool("ask_expert", {"question": question} | ({"domain": domain} if domain else {}))
    wall = time.perf_counter() - started
    if result.is_error:
        raise RuntimeError(f"ask_expert failed: {result.content[0].text}")
    out = result.structured_content
    return {"wall_s": wall, "server_latency_s": out["latency_ms"] / 1000, **log.since_last(),
            "routed_by": out["routed_by"], "domain": out["domain"], "answer": out["answer"][:200]}


def path_summary(calls: list[dict[str, Any]]) -> dict[str, Any]:
    decode_ms = sum(c["decode_ms"] or 0 for c in calls)
    tokens = sum(c["completion_tokens"] or 0 for c in calls)
    prompt_ms = sum(c["prompt_ms"] or 0 for c in calls)
    return {
        "wall_s": summary([c["wall_s"] for c in calls]),
        "lm_calls_per_answer": summary([c["lm_calls"] for c in calls], 1)["mean"],
        "prompt_tokens_per_answer": summary([c["prompt_tokens_total"] or 0 for c in calls], 1)["mean"],
        "prompt_tokens_evaluated_per_answer": summary([c["prompt_tokens"] or 0 for c in calls], 1)["mean"],
        "completion_tokens_per_answer": summary([c["completion_tokens"] or 0 for c in calls], 1)["mean"],
        "decode_tokens_per_s": round(1000 * tokens / decode_ms, 2) if decode_ms else None,
        "prompt_tokens_per_s": round(1000 * sum(c["prompt_tokens"] or 0 for c in calls) / prompt_ms, 2)
        if prompt_ms else None,
        "end_to_end_tokens_per_s": round(tokens / sum(c["wall_s"] for c in calls), 2),
    }


async def run(url: str, log_path: Path, reps: int) -> dict[str, Any]:
    qs = questions(2 * reps + 3)
    async with Client(url, read_timeout_seconds=900) as client, httpx.AsyncClient(timeout=900) as http:
        local = await wait_ready(client)
        base = f"http://127.0.0.1:{local['port']}"
        log = LlamaLog(log_path)
        # Warm-up: imports DSPy/LiteLLM and builds the router and general programs (not timed).
        await direct(http, base, qs[-1], log)
        await expert(client, qs[-2], "general", log)
        await expert(client, qs[-3], None, log)
        calls: dict[str, list[dict[str, Any]]] = {"direct": [], "explicit": [], "direct_b": [], "routed": []}
        for i in range(reps):
            a, b = qs[2 * i], qs[2 * i + 1]  # the routed path gets its own question: no cached general call
            calls["direct"].append(await direct(http, base, a, log))
            calls["explicit"].append(await expert(client, a, "general", log))
            calls["direct_b"].append(await direct(http, base, b, log))
            calls["routed"].append(await expert(client, b, None, log))
            print(f"rep {i + 1}: direct {calls['direct'][-1]['wall_s']:.1f} s, explicit "
                  f"{calls['explicit'][-1]['wall_s']:.1f} s, routed {calls['routed'][-1]['wall_s']:.1f} s")
        return {"local_lm": {k: local[k] for k in ("model", "port")}, "calls": calls}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    cond = conditions(f"{args.reps} repetitions per path, distinct NQ-open questions, fresh data dir (no DSPy cache), "
                      "local llama-server at the default threads (cores-1) and -np 1; shared 2-core machine with "
                      "other agents and two baseline evaluations (two more llama-servers at -t 1) running")
    with scratch_dir("lm") as data, http_server(env=server_env(data), log=data / "server.log") as url:
        raw = anyio.run(run, url, data / "logs" / "llama-server.log", args.reps)
    calls = raw["calls"]
    paths = {"direct": path_summary(calls["direct"] + calls["direct_b"]),
             "explicit_domain": path_summary(calls["explicit"]),
             "routed": path_summary(calls["routed"])}
    ratio_explicit = [e["wall_s"] / d["wall_s"] for e, d in zip(calls["explicit"], calls["direct"], strict=True)]
    ratio_routed = [r["wall_s"] / d["wall_s"] for r, d in zip(calls["routed"], calls["direct_b"], strict=True)]
    body = {
        "benchmark": "lm_overhead", "conditions": finish(cond), "local_lm": raw["local_lm"], "paths": paths,
        "wall_ratio_vs_direct": {"explicit_domain": summary(ratio_explicit), "routed": summary(ratio_routed)},
        "calls": calls,
    }
    rows = [[name, p["wall_s"]["p50"], p["wall_s"]["p95"], p["lm_calls_per_answer"], p["prompt_tokens_per_answer"],
             p["prompt_tokens_evaluated_per_answer"], p["completion_tokens_per_answer"], p["decode_tokens_per_s"],
             p["end_to_end_tokens_per_s"]] for name, p in paths.items()]
    print_table(["path", "p50 s", "p95 s", "LM calls", "prompt tok", "evaluated", "completion tok", "decode tok/s",
                 "end-to-end tok/s"], rows)
    ratios = body["wall_ratio_vs_direct"]
    print(f"wall ratio vs direct (median of per-question ratios): explicit {ratios['explicit_domain']['p50']}x, "
          f"routed {ratios['routed']['p50']}x")
    print(f"wrote {write_result('lm_overhead', body)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
