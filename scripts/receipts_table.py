"""Regenerates the results table in README.md from the receipts in receipts/ (never edit it by hand).

For each gold set it shows its largest holdout evaluations, oldest first, each with the commit
it ran (so a change to an expert shows as a new row beside the old score), every optimization run
(baseline -> candidate on its holdout items, with intervals and McNemar p), and the evaluations of
other gold-set files (`--goldset PATH`), such as the general expert on the demo corpus with and
without retrieval.

    .venv/bin/python scripts/receipts_table.py          # rewrite the README section
    .venv/bin/python scripts/receipts_table.py --check  # exit 1 if the README is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sme_mcp.optimize.receipts import load_receipts

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- receipts-table:begin -->", "<!-- receipts-table:end -->"
GOLDSETS = ("math", "code", "general", "router")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def table(receipts: list[dict]) -> str:
    lines = [
        "| gold set | program | commit | holdout n | score % | 95% CI % | model | receipt |",
        "|---|---|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for name in GOLDSETS:
        evals = [r for r in receipts if r["kind"] == "eval" and r["report"]["goldset"] == name
                 and r["report"]["split"] == "holdout"]
        if not evals:
            lines.append(f"| {name} | – | – | – | not measured yet | – | – | – |")
            continue
        largest = max(r["report"]["n"] for r in evals)
        for r in sorted((r for r in evals if r["report"]["n"] == largest), key=lambda r: r["created_at"]):
            rep = r["report"]
            extra = f" (token F1 {_pct(rep['mean_f1'])})" if rep.get("mean_f1") is not None else ""
            mark = "*" if r.get("_errata") else ""
            notes += [f"\\* `{r['_name']}`: {e['field']} corrected from {e['recorded']!r} to {e['corrected']!r}: "
                      f"{e['reason']} Evidence: {e['evidence']}." for e in r.get("_errata", [])]
            program = f"{rep['program_version'] or 'base'}{mark}"
            lines.append(
                f"| {name} | {program} | {(r.get('git_commit') or '?')[:7]} | {_n(rep)} | "
                f"{_pct(rep['score'])}{extra} | {_pct(rep['ci_low'])}–{_pct(rep['ci_high'])} | "
                f"{rep['lm'].get('model_file', '?')} | [{r['_name']}](receipts/{r['_name']}) |"
            )
    if notes:
        lines += ["", *notes]
    optimizations = [r for r in receipts if r["kind"] == "optimize"]
    if optimizations:
        lines += ["", "| gold set | optimizer | holdout n | baseline % (CI) | candidate % (CI) | delta | McNemar p | "
                  "promoted | receipt |", "|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(optimizations, key=lambda r: r["created_at"]):
            rep, req = r["report"], r["report"]["request"]
            b, c = rep["baseline"], rep["candidate"]
            link = f"[{r['_name']}](receipts/{r['_name']})"
            lines.append(
                f"| {req['goldset']} | {req['optimizer']}/{req['budget']} | {c['n']} | "
                f"{_pct(b['score'])} ({_pct(b['ci_low'])}–{_pct(b['ci_high'])}) | "
                f"{_pct(c['score'])} ({_pct(c['ci_low'])}–{_pct(c['ci_high'])}) | {100 * rep['delta']:+.1f} | "
                f"{rep['mcnemar']['p']:.3g} | {'yes' if rep['promoted'] else 'no'} | {link} |"
            )
    customs: dict[tuple, dict] = {}
    for r in sorted((r for r in receipts if r["kind"] == "eval" and r["report"]["split"] == "custom"),
                    key=lambda r: r["created_at"]):
        expert = r.get("expert_settings") or {}
        key = (r["report"]["goldset"], _relative(r["report"]["path"]), expert.get("retrieval_k"),
               expert.get("retrieval_min_similarity"), r["report"]["n"])
        customs[key] = r  # the newest run of each configuration
    if customs:
        lines += ["", "| gold-set file | expert | retrieval | n | exact match % | 95% CI % | token F1 % | receipt |",
                  "|---|---|---|---|---|---|---|---|"]
        for (goldset, path, k, floor, _), r in customs.items():
            rep = r["report"]
            retrieval = "–" if k is None else "off (closed-book)" if k == 0 else f"top {k}, cosine ≥ {floor}"
            f1 = _pct(rep["mean_f1"]) if rep.get("mean_f1") is not None else "–"
            lines.append(f"| `{path}` | {goldset} ({rep['program_version'] or 'base'}) | {retrieval} | {_n(rep)} | "
                         f"{_pct(rep['score'])} | {_pct(rep['ci_low'])}–{_pct(rep['ci_high'])} | {f1} | "
                         f"[{r['_name']}](receipts/{r['_name']}) |")
    return "\n".join(lines)


def _n(report: dict) -> str:
    """Items scored; a run stopped early says so, with how many it was asked to score."""
    if report.get("complete", True):
        return str(report["n"])
    return f"{report['n']} of {report['planned']} (stopped)"


def _relative(path: str) -> str:
    """A path inside a checkout, relative to it (receipts record absolute paths of whichever clone ran)."""
    parts = Path(path).parts
    for anchor in ("docs", "goldsets"):
        if anchor in parts:
            return str(Path(*parts[parts.index(anchor):]))
    return Path(path).name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    readme = ROOT / "README.md"
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        print(f"README.md has no {BEGIN} ... {END} section", file=sys.stderr)
        return 2
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{table(load_receipts(ROOT / 'receipts'))}\n{END}{tail}"
    if args.check:
        return 0 if new == text else 1
    readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
