"""Draws the benchmark charts (PNG) from bench/results/*.json and the eval/optimize receipts.

Each chart is drawn only from the inputs that exist; a missing input is skipped with a message,
never an error, so this runs on a fresh checkout too.

Usage:
    .venv/bin/python bench/charts.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # no display: render straight to PNG files
import matplotlib.pyplot as plt  # noqa: E402
from common import REPO, RESULTS  # noqa: E402

from sme_mcp.optimize.receipts import load_receipts  # noqa: E402

GOLDSETS = ("math", "code", "general", "router")
CAPTION = ("Indicative only: our gold sets are small samples scored with our own prompts and metrics on a Q4_K_M "
           "model;\nreference figures are published full-benchmark numbers with their authors' prompts.")
COLORS = {"ours": "#1f77b4", "optimized": "#2ca02c", "reference": "#9e9e9e", "same_model": "#ff7f0e"}


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def our_scores(receipts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per gold set, each program's newest complete holdout eval on items that chose nothing (the gate
    items left out), as {label, score, low, high} in percent; a gold set with no such eval shows its
    largest holdout eval over all items. Gate scores are not drawn: they chose the program."""
    out: dict[str, list[dict[str, Any]]] = {g: [] for g in GOLDSETS}
    for goldset in GOLDSETS:
        evals = sorted((r for r in receipts if r.get("kind") == "eval" and r["report"].get("goldset") == goldset
                        and r["report"].get("split") == "holdout" and r["report"].get("complete", True)),
                       key=lambda r: r["created_at"])
        clean = [r for r in evals if "excluded" in r]
        if clean:
            newest = {r["report"].get("program_version"): r for r in clean}
            for version, r in sorted(newest.items(), key=lambda kv: kv[0] or ""):
                rep = r["report"]
                out[goldset].append(_bar(f"ours: {version or 'base'} (n={rep['n']}, unseen items)", rep,
                                         "optimized" if version else "ours"))
        elif evals:
            rep = max(evals, key=lambda r: (r["report"]["n"], r["created_at"]))["report"]
            out[goldset].append(_bar(f"ours: {rep.get('program_version') or 'base'} (holdout n={rep['n']})", rep,
                                     "optimized" if rep.get("program_version") else "ours"))
    return out


def _bar(label: str, side: dict[str, Any], kind: str) -> dict[str, Any]:
    return {"label": label, "score": 100 * side["score"], "low": 100 * side["ci_low"], "high": 100 * side["ci_high"],
            "kind": kind}


def references() -> dict[str, list[dict[str, Any]]]:
    path = REPO / "bench" / "reference_scores.json"
    out: dict[str, list[dict[str, Any]]] = {g: [] for g in GOLDSETS}
    if not path.exists():
        return out
    for fig in json.loads(path.read_text(encoding="utf-8"))["figures"]:
        kind = "same_model" if fig["model"].startswith("Qwen2.5-Coder-1.5B") else "reference"
        label = f"{fig['model']} — {fig['benchmark']}" + (f" ({fig['short']})" if fig.get("short") else "")
        out[fig["goldset"]].append({"label": label, "score": fig["score"], "low": None, "high": None, "kind": kind})
    return out


def chart_scores(receipts: list[dict[str, Any]]) -> Path | None:
    ours, refs = our_scores(receipts), references()
    rows = {g: ours[g] + sorted(refs[g], key=lambda b: b["score"]) for g in GOLDSETS}
    heights = [max(2, len(rows[g]) + (0 if ours[g] else 1)) for g in GOLDSETS]
    fig, axes = plt.subplots(len(GOLDSETS), 1, figsize=(10, 0.42 * sum(heights) + 2.4),
                             gridspec_kw={"height_ratios": heights}, sharex=True)
    for ax, goldset in zip(axes, GOLDSETS, strict=True):
        bars = list(rows[goldset])
        if not ours[goldset]:
            bars.insert(0, {"label": "ours: not measured yet (no receipt)", "score": 0, "low": None, "high": None,
                            "kind": "ours"})
        for y, bar in enumerate(bars):
            ax.barh(y, bar["score"], color=COLORS[bar["kind"]], height=0.7)
            if bar["low"] is not None:
                ax.errorbar(bar["score"], y, xerr=[[bar["score"] - bar["low"]], [bar["high"] - bar["score"]]],
                            fmt="none", ecolor="black", capsize=3, lw=1)
            if bar["label"].endswith("(no receipt)"):
                ax.text(1, y, "not measured yet", va="center", fontsize=8, style="italic")
                continue
            ci = f"  [{bar['low']:.1f}–{bar['high']:.1f}]" if bar["low"] is not None else ""
            ax.text(max(bar["score"], bar["high"] or 0) + 1, y, f"{bar['score']:.1f}{ci}", va="center", fontsize=8)
        ax.set_yticks(range(len(bars)), [b["label"] for b in bars], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{goldset} gold set", fontsize=10, loc="left")
        ax.set_xlim(0, 118)
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlabel("score % (ours: holdout accuracy with Wilson 95% CI; references: published)")
    from matplotlib.patches import Patch

    legend = [Patch(color=COLORS["ours"], label="ours (base program)"),
              Patch(color=COLORS["optimized"], label="ours (optimized program)"),
              Patch(color=COLORS["same_model"], label="published: the model we serve (unquantized)"),
              Patch(color=COLORS["reference"], label="published: other models")]
    fig.legend(handles=legend, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, 0.965), ncol=2)
    fig.suptitle("Gold-set scores vs published figures for other models", fontsize=12)
    fig.text(0.01, 0.005, CAPTION, fontsize=7.5, style="italic")
    fig.tight_layout(rect=(0, 0.05, 1, 0.93))
    return _save(fig, "scores")


def chart_startup(data: dict[str, Any]) -> Path | None:
    servers = data["servers"]
    names = list(servers)
    fig, ax = plt.subplots(figsize=(7, 2.8))
    med = [servers[n]["ms"]["p50"] for n in names]
    err = [[m - servers[n]["ms"]["min"] for n, m in zip(names, med, strict=True)],
           [servers[n]["ms"]["max"] - m for n, m in zip(names, med, strict=True)]]
    ax.barh(names, med, xerr=err, color=[COLORS["reference"], COLORS["ours"], COLORS["optimized"]], capsize=3)
    for y, n in enumerate(names):  # every run, so one slow outlier is visible as such
        runs = servers[n].get("runs_ms", [])
        ax.scatter(runs, [y] * len(runs), s=9, color="black", alpha=0.6, zorder=3)
    for y, m in enumerate(med):
        ax.text(m + 20, y + 0.25, f"{m:.0f} ms", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"launch → tools/list answered over stdio, ms (median of {servers[names[0]]['ms']['n']}, "
                  "whiskers min–max)")
    ax.set_title("Startup: minimal MCPServer vs sme-mcp serve (--no-local, and with the LM loading)", fontsize=10)
    _conditions(fig, data)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save(fig, "startup")


def chart_sympy(data: dict[str, Any]) -> Path | None:
    paths = data["paths"]
    ops = list(next(iter(paths.values())))
    fig, ax = plt.subplots(figsize=(9.5, 3.8))
    width = 0.8 / len(paths)
    for k, (path, per_op) in enumerate(paths.items()):
        xs = [i + (k - (len(paths) - 1) / 2) * width for i in range(len(ops))]
        ax.bar(xs, [per_op[o]["p50"] for o in ops], width, label=f"{path} p50")
        ax.scatter(xs, [per_op[o]["p95"] for o in ops], marker="_", s=120, color="black", zorder=3,
                   label="p95" if k == 0 else None)
    ax.set_xticks(range(len(ops)), ops)
    ax.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_ylabel("ms per call (log scale)")
    ax.set_title("SymPy tools: raw function, worker pool, MCP over stdio and streamable HTTP", fontsize=10)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(axis="y", alpha=0.3, which="both")
    _conditions(fig, data)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save(fig, "sympy_latency")


def chart_lm(data: dict[str, Any]) -> Path | None:
    paths = data["paths"]
    names = list(paths)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    p50 = [paths[n]["wall_s"]["p50"] for n in names]
    p95 = [paths[n]["wall_s"]["p95"] for n in names]
    left.bar(names, p50, color=[COLORS["reference"], COLORS["ours"], COLORS["optimized"]])
    left.scatter(names, p95, marker="_", s=300, color="black", zorder=3, label="p95")
    for x, v in enumerate(p50):
        left.text(x, v / 2, f"{v:.1f} s", ha="center", va="center", fontsize=9, color="white", weight="bold")
    left.set_ylabel("wall time per answer, s (p50 bars)")
    left.set_title("Direct llama-server vs ask_expert", fontsize=10)
    left.legend(fontsize=8, loc="upper left")
    prompt = [paths[n]["prompt_tokens_per_answer"] for n in names]
    completion = [paths[n]["completion_tokens_per_answer"] for n in names]
    right.bar(names, prompt, label="prompt tokens", color="#c6dbef")
    right.bar(names, completion, bottom=prompt, label="generated tokens", color="#08519c")
    for x, n in enumerate(names):
        right.text(x, prompt[x] + completion[x], f"{paths[n]['decode_tokens_per_s']} tok/s decode",
                   ha="center", va="bottom", fontsize=8)
    right.set_ylabel("tokens per answer (mean)")
    right.set_title("Where the time goes: tokens per answer", fontsize=10)
    right.legend(fontsize=8)
    _conditions(fig, data)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save(fig, "lm_overhead")


def chart_concurrency(data: dict[str, Any]) -> Path | None:
    servers = data["servers"]
    fig, (thr, lat, thr_t) = plt.subplots(1, 3, figsize=(13, 3.8))
    for np_, server in servers.items():
        cells = server["cells"]
        conc = [c["concurrency"] for c in cells]
        thr.plot(conc, [c["answers_per_min"] for c in cells], marker="o", label=f"-np {np_}")
        line = lat.plot(conc, [c["latency_s"]["p50"] for c in cells], marker="o", label=f"-np {np_} p50")[0]
        lat.plot(conc, [c["latency_s"]["p95"] for c in cells], marker="x", ls="--", color=line.get_color(),
                 label=f"-np {np_} p95")
    for ax, title, ylabel in ((thr, "Throughput", "answers / min"), (lat, "Latency", "s per answer")):
        ax.set_xlabel("concurrent ask_expert calls")
        ax.set_xticks(sorted({c["concurrency"] for s in servers.values() for c in s["cells"]}))
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    blocks = data.get("threads", {}).get("blocks", [])
    if blocks:
        labels = [f"-t {b['threads']}\n(block {i + 1})" for i, b in enumerate(blocks)]
        values = [b["decode_tokens_per_s"]["p50"] or 0 for b in blocks]
        thr_t.bar(labels, values, color=[COLORS["ours"] if b["threads"] == 1 else COLORS["same_model"] for b in blocks])
        for x, v in enumerate(values):
            thr_t.text(x, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
        thr_t.set_ylabel("decode tokens/s (p50)")
        thr_t.set_title("llama-server threads, run A-B-A", fontsize=10)
    rec = data.get("recommendation", {})
    fig.suptitle(f"Concurrency vs SME_LOCAL__PARALLEL (-np); recommended default: {rec.get('parallel', '?')}",
                 fontsize=11)
    _conditions(fig, data)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return _save(fig, "concurrency")


def _conditions(fig: Any, data: dict[str, Any]) -> None:
    c = data.get("conditions", {})
    before, after = c.get("loadavg_before", ["?"])[0], c.get("loadavg_after", ["?"])[0]
    fig.text(0.01, 0.01, f"{c.get('cpu_count')} CPUs, 1-min load {before:.2f} → {after:.2f}, "
             f"{c.get('llama_servers_before')} llama-server processes running at start; {c.get('started_at')}",
             fontsize=7, style="italic")


def _save(fig: Any, name: str) -> Path:
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    drawn = [chart_scores(load_receipts(REPO / "receipts", skip_unreadable=True))]
    for name, draw in (("startup", chart_startup), ("sympy_latency", chart_sympy), ("lm_overhead", chart_lm),
                       ("concurrency", chart_concurrency)):
        data = load(name)
        if data is None:
            print(f"skipped {name}.png: no bench/results/{name}.json")
            continue
        drawn.append(draw(data))
    for path in drawn:
        if path is not None:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
