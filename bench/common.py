"""Helpers shared by the benchmark scripts: run conditions, percentiles, servers, tables, JSON results.

The machine these run on is shared, so every result records the conditions it was measured
under (load average before and after, CPU count, other llama-server processes, a note).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
SME_MCP = str(Path(sys.executable).with_name("sme-mcp"))


def llama_server_count() -> int:
    """How many llama-server processes run on the machine (ours and other people's)."""
    count = 0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            count += comm.read_text().strip() == "llama-server"
    return count


def conditions(note: str) -> dict[str, Any]:
    """What a result must say about the machine at the start of a run; `finish` completes it."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    packages = {}
    for name in ("mcp", "dspy", "litellm", "sympy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[name] = metadata.version(name)
    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_before": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "llama_servers_before": llama_server_count(),
        "git_commit": commit.stdout.strip() or None,
        "python": platform.python_version(),
        "packages": packages,
        "note": note,
        "_t0": time.monotonic(),
    }


def finish(cond: dict[str, Any]) -> dict[str, Any]:
    cond = dict(cond)
    cond["wall_s"] = round(time.monotonic() - cond.pop("_t0"), 1)
    cond["loadavg_after"] = list(os.getloadavg())
    cond["llama_servers_after"] = llama_server_count()
    return cond


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary(values: list[float], digits: int = 2) -> dict[str, Any]:
    """n, p50, p95, mean, min and max of a list of timings."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "mean": None, "min": None, "max": None}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), digits),  # type: ignore[arg-type]
        "p95": round(percentile(values, 95), digits),  # type: ignore[arg-type]
        "mean": round(sum(values) / len(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def write_json(path: Path, body: dict[str, Any]) -> Path:
    """Writes `body` to `path` atomically (a reader never sees half a file) and says so on stderr."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    print(f"wrote {path}", file=sys.stderr)
    return path


def write_result(name: str, body: dict[str, Any]) -> Path:
    """Writes `bench/results/<name>.json` atomically."""
    return write_json(RESULTS / f"{name}.json", body)


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [["–" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a server under test: our data dir (fresh DSPy cache, logs) plus SME_* settings."""
    return {**os.environ, "SME_DATA_DIR": str(data_dir), **settings}


@contextlib.contextmanager
def http_server(*extra: str, env: dict[str, str], log: Path, timeout: float = 60.0) -> Iterator[str]:
    """Runs `sme-mcp serve --transport http` on a free port; yields its MCP URL; stops it on exit."""
    port = free_port()
    with log.open("ab") as logf:
        proc = subprocess.Popen(
            [SME_MCP, "serve", "--transport", "http", "--port", str(port), *extra],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not listen within {timeout:g} s; see {log}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory for one run's server data (no DSPy cache hit from an earlier run); removed
    afterwards unless SME_BENCH_KEEP=1 (to read the server and llama-server logs)."""
    path = Path(tempfile.mkdtemp(prefix=f"sme-bench-{prefix}-"))
    try:
        yield path
    finally:
        if os.environ.get("SME_BENCH_KEEP") != "1":
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def uncached_local_lm(role: str, threads: int, prefix: str) -> Iterator[tuple[Any, Any, Any]]:
    """A supervised llama-server of its own (`threads` for prompt and decoding, one server, logs in a fresh
    sme-bench-<prefix>-* directory) and the `role`'s LM on it, with DSPy's caches off so every call reaches the
    model; yields (settings, lm, server) and stops the server on exit.

    Example:
        >>> with uncached_local_lm("code", 2, "code-samples") as (settings, lm, server):  # doctest: +SKIP
        ...     pred = VerifiedCodeExpert()(question="...")
    """
    import dspy

    from sme_mcp.config.settings import LMSpec, Settings
    from sme_mcp.experts.lm import LMChain
    from sme_mcp.server.local_lm import LocalServer

    settings = Settings()
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    local = settings.local.model_copy(update={"threads": threads, "threads_batch": threads})
    server = LocalServer(local, settings.cache_dir, Path(tempfile.mkdtemp(prefix=f"sme-bench-{prefix}-")))
    server.start()
    try:
        server.base_url(wait=300)
        lm, _ = LMChain(role, [LMSpec()], server, cache=False).first_available()
        yield settings, lm, server
    finally:
        server.stop()


def math_word_problem_expert(settings: Any, limit: int | None) -> tuple[list[Any], Any, str]:
    """The math dev split's word problems (not symbolic requests, the first `limit`), the math expert with its
    word-problem path on and the active program's demos loaded, and that program's version ("base" if none).

    Example:
        >>> items, expert, version = math_word_problem_expert(Settings(), None)  # doctest: +SKIP
        >>> len(items), version  # doctest: +SKIP
        (73, 'v1')
    """
    from sme_mcp.experts.math_kind import is_symbolic
    from sme_mcp.experts.modules import MathExpert
    from sme_mcp.experts.programs import ProgramStore
    from sme_mcp.optimize.goldsets import goldset_path, load_goldset

    items = [i for i in load_goldset(goldset_path(settings.goldsets_dir, "math", "dev")) if not is_symbolic(i.question)]
    expert = MathExpert([], word_problems="program")
    store = ProgramStore(settings.data_dir / "programs", settings.shipped_programs_dir)
    active = store.active("math")
    if active is not None:
        store.load_into(expert, active)
    return items[:limit], expert, active.version if active is not None else "base"


def decision_args(doc: str, limit: int | None, limit_help: str) -> argparse.Namespace:
    """The command line of a benchmark that decides a setting: `--limit`, `--note` and `--compare-only`.

    Args:
        doc: The script's docstring; its first line is the description.
        limit: How many items by default (None: all).
        limit_help: What `--limit` counts.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--limit", type=int, default=limit, help=limit_help)
    parser.add_argument("--note", default="")
    parser.add_argument("--compare-only", action="store_true", help="recompute the verdict from the JSON")
    return parser.parse_args()


def compare_again(name: str, decide: Callable[[dict[str, Any]], dict[str, Any]],
                  show: Callable[[dict[str, Any]], None]) -> None:
    """A decision benchmark's verdict recomputed from its JSON (`--compare-only`, after its rule's code changed),
    written back and shown; nothing is measured again."""
    body = json.loads((RESULTS / f"{name}.json").read_text())
    body["decision"] = decide(body)
    write_result(name, body)
    show(body)


def score_arms(domain: str, items: list[dict[str, Any]], file_name: str, setting: str, arms: dict[str, str],
               side: Callable[[dict[str, Any], list[dict[str, Any]]], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A decision benchmark's runs: per arm, one `eval_goldset` over `items` with the environment `setting` set to
    the arm's value, summarized by `side`, and a line printed as each run ends.

    Args:
        domain: The expert scored.
        items: Gold items, written to a temporary `file_name` (the name receipts and the receipts table show).
        file_name: The goldset file's name.
        setting: The environment variable the arms differ in, e.g. SME_GENERAL_DRAFT_FIRST.
        arms: Arm name -> the setting's value in that arm.
        side: Turns a run's report and receipt items into the arm's summary (with "correct", "n", "latency_s").

    Example:
        >>> score_arms("general", items, "squad_tune60.jsonl", "SME_GENERAL_DRAFT_FIRST",
        ...            {"passages": "false", "draft_first": "true"}, side)  # doctest: +SKIP
    """
    scored = {}
    with tempfile.TemporaryDirectory(prefix=f"sme-bench-{domain}-") as tmp:
        goldset = Path(tmp) / file_name
        goldset.write_text("".join(json.dumps(i) + "\n" for i in items))
        for arm, value in arms.items():
            scored[arm] = side(*eval_goldset(domain, goldset, **{setting: value}))
            print(f"{arm}: {scored[arm]['correct']}/{scored[arm]['n']}, p50 {scored[arm]['latency_s']['p50']} s",
                  flush=True)
    return scored


def policy_figures(outcomes: list[dict[str, Any]], today: list[bool], right: str, digits: int = 2) -> dict[str, Any]:
    """A policy's figures read off a decision bench's one run: how many items it gets right (with a 95% Wilson
    interval), its mean LM calls, its seconds, and its pairing with today's policy on the same items.

    Args:
        outcomes: Per item, the policy's outcome: `right` (bool), "lm_calls" and "seconds".
        today: Per item, whether today's policy got it right.
        right: The outcome's key saying whether the item came out right.
        digits: Decimals of the mean LM calls.

    Example:
        >>> policy_figures([{"ok": True, "lm_calls": 2, "seconds": 3.0}], [False], "ok")["vs_today"]["only_this"]
        1
    """
    from sme_mcp.optimize.stats import mcnemar_exact, wilson_interval

    mine = [bool(o[right]) for o in outcomes]
    k, n = sum(mine), len(mine)
    low, high = wilson_interval(k, n)
    _, _, p = mcnemar_exact(today, mine)
    return {"right": k, "n": n, "ci95": [round(low, 3), round(high, 3)],
            "lm_calls_mean": round(sum(o["lm_calls"] for o in outcomes) / max(n, 1), digits),
            "seconds": summary([o["seconds"] for o in outcomes]),
            "vs_today": {"only_this": sum(m and not t for m, t in zip(mine, today, strict=True)),
                         "only_today": sum(t and not m for m, t in zip(mine, today, strict=True)),
                         "mcnemar_p": round(p, 4)}}


def paired(base: dict[str, Any], cand: dict[str, Any]) -> tuple[int, int, float]:
    """Two runs of a decision benchmark on the same items: how many only `base` got right, how many only `cand`
    did (items matched by id, in base's order), and McNemar's exact p rounded to 4 places.

    Example:
        >>> paired({"items": [{"id": "a", "correct": True}, {"id": "b", "correct": False}]},
        ...        {"items": [{"id": "b", "correct": True}, {"id": "a", "correct": True}]})
        (0, 1, 1.0)
    """
    from sme_mcp.optimize.stats import mcnemar_exact

    by_id = {i["id"]: i["correct"] for i in cand["items"]}
    before = [i["correct"] for i in base["items"] if i["id"] in by_id]
    after = [by_id[i["id"]] for i in base["items"] if i["id"] in by_id]
    b, c, pvalue = mcnemar_exact(before, after)
    return b, c, round(pvalue, 4)


def eval_goldset(domain: str, goldset: Path, **settings: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One `sme-mcp eval --goldset` run with the given environment settings and DSPy's response cache off: its JSON
    report and every item of its receipt (the report printed holds only a sample).

    Example:
        >>> goldset = Path("/tmp/items.jsonl")
        >>> report, items = eval_goldset("math", goldset, SME_MATH_WORD_PROBLEMS="program")  # doctest: +SKIP
    """
    env = {**os.environ, **settings, "SME_LM_CACHE": "false"}
    done = subprocess.run([SME_MCP, "eval", "--domain", domain, "--goldset", str(goldset), "--json"],
                          env=env, capture_output=True, text=True, cwd=REPO)
    if not done.stdout.strip():
        raise RuntimeError(f"eval with {settings} printed no report (exit {done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    return report, json.loads((REPO / "receipts" / report["receipt"]).read_text())["items"]
