"""Runs every benchmark in one go, then draws the charts and regenerates the README section.

Each step is its own process (a fresh interpreter, nothing shared between benchmarks); a failed
step is reported and the others still run. The whole run takes roughly 45-60 minutes on 2 cores.

Usage:
    .venv/bin/python bench/run_all.py                       # everything
    .venv/bin/python bench/run_all.py --only charts report  # redraw and rewrite the README only
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
STEPS = ("startup", "weight_layout", "sympy_latency", "fast_path", "lm_overhead", "concurrency", "retrieval",
         "retrieval_gate", "retrieval_rerank", "context_window", "grounding",
         "learning_from_use", "charts", "report")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=STEPS, help="run only these steps (in the usual order)")
    args = parser.parse_args()
    failed = []
    for step in STEPS:
        if args.only and step not in args.only:
            continue
        print(f"=== {step}", flush=True)
        started = time.monotonic()
        code = subprocess.run([sys.executable, str(BENCH / f"{step}.py")], cwd=BENCH.parent).returncode
        print(f"=== {step}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(step)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
