"""Repacked or plain weights: prompt reading and decoding speed of the supervised llama-server in each layout.

llama.cpp repacks quantized weights into interleaved layouts at load unless started with `--no-repack`.
`sme-mcp setup` times one probe answer each way and keeps the faster (server/repack_choice.py); this
script measures the same probe in rounds that alternate the layouts, for both thread layouts the adaptive
servers use (`-t <cores>` and `-t <cores-1> -tb <cores>`), one llama-server at a time, so drift hits both
layouts alike. Each probe reads about 690 prompt tokens without the prompt cache and writes 48.

    .venv/bin/python bench/weight_layout.py [--rounds 3]   # writes bench/results/weight_layout.json
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from common import conditions, finish, print_table, scratch_dir, summary, write_result

from sme_mcp.config.settings import LocalServerSettings, Settings
from sme_mcp.server import repack_choice
from sme_mcp.server.local_lm import LocalServer


def probe_once(threads: int, threads_batch: int, repack: bool) -> dict[str, Any]:
    """One llama-server started in the layout, one probe answer, stopped."""
    settings = Settings()
    local_settings = LocalServerSettings(**{**settings.local.model_dump(), "threads": threads,
                                            "threads_batch": threads_batch, "repack": repack, "parallel": 1})
    with scratch_dir("weight-layout") as data:
        local = LocalServer(local_settings, settings.cache_dir, data / "logs")
        local.start()
        try:
            timing = repack_choice.probe(local.base_url(wait=local_settings.startup_timeout))
        finally:
            local.stop()
    if timing is None:
        raise SystemExit("llama-server reported no timings")
    return {"prompt_tokens": timing.prompt_tokens, "prompt_tokens_per_s": round(timing.prompt_tokens_per_s, 1),
            "generated_tokens": timing.generated_tokens,
            "generated_tokens_per_s": round(timing.generated_tokens_per_s, 2),
            "reference_s": round(timing.reference_seconds(), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    cond = conditions(args.note)
    cores = os.cpu_count() or 2
    threads = {f"-t {cores}": (cores, cores), f"-t {max(1, cores - 1)} -tb {cores}": (max(1, cores - 1), cores)}
    probes: list[dict[str, Any]] = []
    for round_no in range(args.rounds):
        for flags, (t, tb) in threads.items():
            for repack in (True, False):
                row = {"round": round_no, "threads": flags, "repack": repack, **probe_once(t, tb, repack)}
                probes.append(row)
                print(row, flush=True)
    layouts = []
    for flags in threads:
        for repack in (True, False):
            mine = [p for p in probes if p["threads"] == flags and p["repack"] == repack]
            layouts.append({"threads": flags, "repack": repack,
                            "prompt_tokens_per_s": summary([p["prompt_tokens_per_s"] for p in mine], 1),
                            "generated_tokens_per_s": summary([p["generated_tokens_per_s"] for p in mine]),
                            "reference_s": summary([p["reference_s"] for p in mine])})
    print_table(["threads", "weights", "prompt tok/s p50", "decode tok/s p50", "500 read + 60 written, s"],
                [[x["threads"], "repacked" if x["repack"] else "plain", x["prompt_tokens_per_s"]["p50"],
                  x["generated_tokens_per_s"]["p50"], x["reference_s"]["p50"]] for x in layouts])
    write_result("weight_layout", {"conditions": finish(cond), "reference": {
        "prompt_tokens": repack_choice.REFERENCE_PROMPT_TOKENS,
        "generated_tokens": repack_choice.REFERENCE_GENERATED_TOKENS}, "layouts": layouts, "probes": probes})


if __name__ == "__main__":
    main()
