"""Base `CodeExpert` (one ChainOfThought(WriteCode) call) versus `VerifiedCodeExpert` (write, run the question's
tests in the sandbox, repair, maybe one sampled alternative) on the code gold set's DEV split.

Each item's answer is scored like `run_eval` scores it: `optimize.metrics.code_passes` runs the returned code
against ALL the gold asserts (the question shows only the first). The holdout split is for reporting and is
never used here.

Both arms run on one supervised llama-server (the embedded model, temperature 0) started by this script. By
default the two arms share DSPy's in-memory cache, so the verified expert's first write, whose prompt is
identical to the base call's, is answered from the cache: the arms are paired (verification starts from the
very code the base expert returned) and the model is not asked twice. Its time is then estimated as its own
seconds plus the base call's; `--fresh` sends every verified call to the model instead.

Model calls are counted from llama-server's own log (one "eval time" line per completion) and from DSPy's
LM history (cache hits excluded), per item and arm.

Usage:
    .venv/bin/python bench/code_verify.py [--n 20] [--repair-attempts 2] [--fresh] [--note "..."]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import REPO, conditions, finish, print_table, summary, write_result

EVAL_LINE = re.compile(r"\|\s+eval time =\s*([\d.]+) ms /\s*(\d+) tokens")


class ServerLog:
    """Counts completions in llama-server's log since the last call (one `eval time` line each)."""

    def __init__(self, path: Path):
        self.path, self.offset = path, path.stat().st_size if path.exists() else 0

    def since_last(self) -> dict[str, Any]:
        time.sleep(0.2)  # the timing lines follow the response
        with self.path.open("rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
            self.offset = f.tell()
        evals = [(float(ms), int(n)) for ms, n in EVAL_LINE.findall(text)]
        return {"completions": len(evals), "generated_tokens": sum(n for _, n in evals),
                "decode_s": round(sum(ms for ms, _ in evals) / 1000, 2)}


def run_arm(module: Any, item: Any, lm: Any, log: ServerLog) -> dict[str, Any]:
    import dspy

    from sme_mcp.optimize.metrics import code_passes

    start_history = len(lm.history)
    started = time.monotonic()
    pred, error = None, None
    try:
        with dspy.context(lm=lm):
            pred = module(question=item.question)
    except Exception as exc:  # a failed item counts as a miss, the run goes on
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    seconds = time.monotonic() - started
    entries = lm.history[start_history:]
    fresh = [e for e in entries if not getattr(e.get("response"), "cache_hit", False)]
    passed, detail = (False, error or "no prediction")
    if pred is not None:
        passed, detail = code_passes(str(pred.code or ""), item.tests, item.setup)
    row: dict[str, Any] = {
        "gold_pass": passed, "gold_detail": None if passed else detail[:300], "seconds": round(seconds, 2),
        "lm_calls": len(entries), "model_calls": len(fresh), "cache_hits": len(entries) - len(fresh),
        **log.since_last(), "error": error,
    }
    verification = getattr(pred, "verification", None)
    if verification is not None:
        row.update({
            "verification": verification.outcome, "tests_run": verification.tests_run,
            "tests_passed": verification.tests_passed, "attempts": [a["kind"] for a in pred.attempts],
            "attempt_tests_passed": [a["tests_passed"] for a in pred.attempts],
            "module_lm_calls": pred.lm_calls,
        })
    return row


def rate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from sme_mcp.optimize.stats import wilson_interval

    n, k = len(rows), sum(r["gold_pass"] for r in rows)
    low, high = wilson_interval(k, n)
    return {"n": n, "passed": k, "pass_rate": round(k / n, 3) if n else None,
            "ci95": [round(low, 3), round(high, 3)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="first N items of the split")
    parser.add_argument("--split", choices=("dev", "train"), default="dev", help="never holdout: it is for reporting")
    parser.add_argument("--repair-attempts", type=int, default=2)
    parser.add_argument("--no-alternative", action="store_true", help="no sampled alternative when repairs stall")
    parser.add_argument("--fresh", action="store_true", help="send the verified expert's first write to the model too")
    parser.add_argument("--note", default="", help="recorded with the result")
    parser.add_argument("--out", default="code_verify", help="result name under bench/results")
    args = parser.parse_args()

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    sys.path.insert(0, str(REPO))
    import dspy

    from sme_mcp.config.settings import LMSpec, Settings
    from sme_mcp.experts.code_expert import MAX_LM_CALLS, VerifiedCodeExpert
    from sme_mcp.experts.lm import LMChain
    from sme_mcp.experts.modules import CodeExpert
    from sme_mcp.optimize.goldsets import goldset_path, load_goldset
    from sme_mcp.server.local_lm import LocalServer

    cond = conditions(args.note or f"first {args.n} code {args.split} items; base vs verified")
    settings = Settings()
    items = load_goldset(goldset_path(settings.goldsets_dir, "code", args.split), limit=args.n)
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=True)  # nothing from earlier runs
    log_dir = Path(tempfile.mkdtemp(prefix="sme-bench-code-verify-"))
    server = LocalServer(settings.local, settings.cache_dir, log_dir)
    server.start()
    rows: list[dict[str, Any]] = []
    try:
        server.base_url(wait=300)
        spec = LMSpec()
        lm, _ = LMChain("code", [spec], server, cache=True).first_available()
        verified_lm = LMChain("code", [spec], server, cache=False).first_available()[0] if args.fresh else lm
        log = ServerLog(server.log_path)
        base = CodeExpert()
        verified = VerifiedCodeExpert(repair_attempts=args.repair_attempts,
                                      alternatives=0 if args.no_alternative else 1)
        for i, item in enumerate(items, 1):
            b = run_arm(base, item, lm, log)
            v = run_arm(verified, item, verified_lm, log)
            v["seconds_estimated"] = v["seconds"] if args.fresh else round(v["seconds"] + b["seconds"], 2)
            rows.append({"id": item.id, "base": b, "verified": v})
            print(f"[{i}/{len(items)}] {item.id}: base {'PASS' if b['gold_pass'] else 'fail'} "
                  f"({b['seconds']:.1f} s) | verified {'PASS' if v['gold_pass'] else 'fail'} "
                  f"({v.get('verification')}, {v.get('attempts')}, {v['model_calls']} model calls, "
                  f"{v['seconds_estimated']:.1f} s)", flush=True)
    finally:
        server.stop()
        model = server.model_path.name if server.model_path else None

    base_rows, ver_rows = [r["base"] for r in rows], [r["verified"] for r in rows]
    said_passed = [r for r in ver_rows if r.get("verification") == "passed"]
    result = {
        "conditions": finish(cond),
        "setup": {
            "split": args.split, "n": len(rows), "model": model, "threads": settings.local.threads,
            "temperature": 0.0, "repair_attempts": args.repair_attempts, "alternative": not args.no_alternative,
            "max_lm_calls": MAX_LM_CALLS, "first_write_shared_with_base": not args.fresh,
            "scoring": "optimize.metrics.code_passes against all gold tests",
        },
        "base": {**rate(base_rows), "lm_calls_per_item": summary([r["lm_calls"] for r in base_rows]),
                 "seconds_per_item": summary([r["seconds"] for r in base_rows])},
        "verified": {
            **rate(ver_rows),
            "lm_calls_per_item": summary([r["lm_calls"] for r in ver_rows]),
            "model_calls_per_item": summary([r["model_calls"] for r in ver_rows]),
            "seconds_per_item_estimated": summary([r["seconds_estimated"] for r in ver_rows]),
            "verification_outcomes": {o: sum(r.get("verification") == o for r in ver_rows)
                                      for o in ("passed", "partial", "failed", "unchecked")},
            "said_passed_and_gold_passed": sum(r["gold_pass"] for r in said_passed),
            "said_passed": len(said_passed),
        },
        "changed": {
            "fixed": [r["id"] for r in rows if r["verified"]["gold_pass"] and not r["base"]["gold_pass"]],
            "broken": [r["id"] for r in rows if r["base"]["gold_pass"] and not r["verified"]["gold_pass"]],
        },
        "items": rows,
    }
    path = write_result(args.out, result)
    print()
    print_table(["arm", "pass rate", "95% CI", "LM calls/item (mean)", "model calls (total)", "s/item p50", "mean"], [
        ["base", f"{result['base']['passed']}/{len(rows)}", result["base"]["ci95"],
         result["base"]["lm_calls_per_item"]["mean"], sum(r["model_calls"] for r in base_rows),
         result["base"]["seconds_per_item"]["p50"], result["base"]["seconds_per_item"]["mean"]],
        ["verified", f"{result['verified']['passed']}/{len(rows)}", result["verified"]["ci95"],
         result["verified"]["lm_calls_per_item"]["mean"], sum(r["model_calls"] for r in ver_rows),
         result["verified"]["seconds_per_item_estimated"]["p50"],
         result["verified"]["seconds_per_item_estimated"]["mean"]],
    ])
    print(f"\nverification outcomes: {result['verified']['verification_outcomes']}; said passed and passed all "
          f"gold tests: {result['verified']['said_passed_and_gold_passed']}/{result['verified']['said_passed']}")
    print(f"fixed: {result['changed']['fixed']}; broken: {result['changed']['broken']}")
    print(f"load average before {cond['loadavg_before']}, after {result['conditions']['loadavg_after']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
