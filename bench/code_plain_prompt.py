"""How the model writes code when asked the way its makers measured it, against the code expert's first write.

The model's 69.2% on MBPP (its report's greedy pass@1) comes from a plain chat prompt: the task as the user
message, the reply a Markdown code block. The code expert's first write is a DSPy `ChainOfThought(WriteCode)`
call through `ChatAdapter`, whose prompt asks for `[[ ## reasoning ## ]]`, `[[ ## code ## ]]` and
`[[ ## explanation ## ]]` fields. This script asks the same gold items both ways, one LM call each, greedy,
and scores each answer like `run_eval` does: `optimize.metrics.code_passes` against ALL the gold asserts (the
question shows only the first).

Arms (each one call per item, no verification):
    plain    system "You are a helpful assistant."; user: the question; the first ```python block is the code
    dspy     the code expert's `write` predictor (`ChainOfThought(WriteCode)`, ChatAdapter), as served

Dev or train only: the holdout split is for reporting.

Usage:
    .venv/bin/python bench/code_plain_prompt.py [--n 20] [--arms plain,dspy] [--note "..."]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import REPO, conditions, finish, print_table, summary, write_result

SYSTEM = "You are a helpful assistant."


def plain_call(lm: Any, question: str) -> tuple[str, int]:
    """One chat call with the question as the user message: (the code it wrote, completion tokens)."""
    from sme_mcp.tools.markdown import strip_fences

    reply = lm(messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}])
    text = reply[0] if isinstance(reply[0], str) else reply[0].get("text", "")
    usage = (lm.history[-1].get("usage") or {}) if lm.history else {}
    return strip_fences(text), int(usage.get("completion_tokens") or 0)


def dspy_call(module: Any, lm: Any, question: str) -> tuple[str, int]:
    import dspy

    with dspy.context(lm=lm):
        pred = module(question=question)
    usage = (lm.history[-1].get("usage") or {}) if lm.history else {}
    return str(pred.code or ""), int(usage.get("completion_tokens") or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="first N items of the split")
    parser.add_argument("--split", choices=("dev", "train"), default="dev", help="never holdout: it is for reporting")
    parser.add_argument("--arms", default="plain,dspy")
    parser.add_argument("--note", default="", help="recorded with the result")
    parser.add_argument("--out", default="code_plain_prompt", help="result name under bench/results")
    args = parser.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    sys.path.insert(0, str(REPO))
    import dspy

    from sme_mcp.config.settings import LMSpec, Settings
    from sme_mcp.experts.lm import LMChain
    from sme_mcp.experts.modules import CodeExpert
    from sme_mcp.optimize.goldsets import goldset_path, load_goldset
    from sme_mcp.optimize.metrics import code_passes
    from sme_mcp.optimize.stats import mcnemar_exact, wilson_interval
    from sme_mcp.server.local_lm import LocalServer

    cond = conditions(args.note or f"first {args.n} code {args.split} items; plain chat prompt vs DSPy write")
    settings = Settings()
    items = load_goldset(goldset_path(settings.goldsets_dir, "code", args.split), limit=args.n)
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    server = LocalServer(settings.local, settings.cache_dir, Path(tempfile.mkdtemp(prefix="sme-bench-plain-")))
    server.start()
    rows: list[dict[str, Any]] = []
    try:
        server.base_url(wait=300)
        spec = LMSpec()
        lm, _ = LMChain("code", [spec], server, cache=False).first_available()
        module = CodeExpert()
        for i, item in enumerate(items, 1):
            row: dict[str, Any] = {"id": item.id}
            for arm in arms:
                started = time.monotonic()
                try:
                    if arm == "plain":
                        code, tokens = plain_call(lm, item.question)
                    else:
                        code, tokens = dspy_call(module, lm, item.question)
                    error = None
                except Exception as exc:  # a failed call is a miss; the run goes on
                    code, tokens, error = "", 0, f"{type(exc).__name__}: {str(exc)[:200]}"
                seconds = time.monotonic() - started
                passed, detail = code_passes(code, item.tests, item.setup)
                row[arm] = {"gold_pass": passed, "detail": None if passed else detail[:300],
                            "seconds": round(seconds, 2), "completion_tokens": tokens, "error": error,
                            "code": code[:2000]}
            rows.append(row)
            print(f"[{i}/{len(items)}] {item.id}: " + " | ".join(
                f"{arm} {'PASS' if row[arm]['gold_pass'] else 'fail'} ({row[arm]['seconds']:.1f} s, "
                f"{row[arm]['completion_tokens']} tok)" for arm in arms), flush=True)
    finally:
        server.stop()
        model = server.model_path.name if server.model_path else None

    result: dict[str, Any] = {
        "conditions": finish(cond),
        "setup": {"split": args.split, "n": len(rows), "model": model, "threads": settings.local.threads,
                  "temperature": 0.0, "system_prompt": SYSTEM, "arms": arms,
                  "scoring": "optimize.metrics.code_passes against all gold tests"},
        "arms": {},
        "items": rows,
    }
    table = []
    for arm in arms:
        k = sum(r[arm]["gold_pass"] for r in rows)
        low, high = wilson_interval(k, len(rows))
        result["arms"][arm] = {
            "passed": k, "n": len(rows), "pass_rate": round(k / len(rows), 3) if rows else None,
            "ci95": [round(low, 3), round(high, 3)],
            "seconds_per_item": summary([r[arm]["seconds"] for r in rows]),
            "completion_tokens_per_item": summary([r[arm]["completion_tokens"] for r in rows]),
        }
        a = result["arms"][arm]
        table.append([arm, f"{k}/{len(rows)}", a["ci95"], a["seconds_per_item"]["p50"],
                      a["completion_tokens_per_item"]["mean"]])
    if len(arms) == 2:
        first, second = arms
        only_first = [r["id"] for r in rows if r[first]["gold_pass"] and not r[second]["gold_pass"]]
        only_second = [r["id"] for r in rows if r[second]["gold_pass"] and not r[first]["gold_pass"]]
        _, _, p_value = mcnemar_exact([r[second]["gold_pass"] for r in rows], [r[first]["gold_pass"] for r in rows])
        result["paired"] = {f"only_{first}": only_first, f"only_{second}": only_second, "mcnemar_p": round(p_value, 4)}
    path = write_result(args.out, result)
    print()
    print_table(["arm", "passed", "95% CI", "s/item p50", "tokens/item mean"], table)
    if "paired" in result:
        print(f"paired: {result['paired']}")
    print(f"load average before {cond['loadavg_before']}, after {result['conditions']['loadavg_after']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
