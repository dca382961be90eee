"""Regenerates the results table in README.md from the receipts in receipts/ (never edit it by hand).

For each gold set it shows its largest holdout evaluations, oldest first, each with the commit
it ran (so a change to an expert shows as a new row beside the old score); beside them the largest
runs that left out the holdout items that chose a program, and base against each compiled version
paired on those same items; every optimization run (baseline -> candidate on its gate items, with
intervals, McNemar p and commit, and on holdout items where it reported them), and the evaluations of
other gold-set files (`--goldset PATH`), such as the general expert on the demo corpus with and
without retrieval. A commit keeps its `-dirty` mark; a field corrected in receipts/errata.jsonl is
shown corrected, marked `*`, with the reason and evidence below its table.

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
GOLDSETS = ("math", "code", "general", "router")  # first, in this order; declared experts' gold sets follow


def goldsets(receipts: list[dict]) -> list[str]:
    """The built-in gold sets, then every other gold set a receipt is about (declared experts), by name."""
    others = sorted({r["report"]["goldset"] for r in receipts if r["kind"] == "eval"} - set(GOLDSETS))
    return [*GOLDSETS, *others]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _commit(value: str | None) -> str:
    """A commit shortened to 7 characters, keeping the `-dirty` mark of an uncommitted working tree."""
    if not value:
        return "?"
    return value[:7] + ("-dirty" if value.endswith("-dirty") else "")


def _marked(r: dict, field: str, cell: str) -> str:
    """`cell` with `*` when an erratum corrected `field` (a dotted receipt field) of receipt `r`."""
    return cell + ("*" if any(e["field"] == field for e in r.get("_errata", [])) else "")


def _link(r: dict, shown: tuple[str, ...]) -> str:
    """The receipt's link, marked `*` when an erratum corrected a field that has no column of its own."""
    hidden = any(e["field"] not in shown for e in r.get("_errata", []))
    return f"[{r['_name']}](receipts/{r['_name']}){'*' if hidden else ''}"


def _value(field: str, value: object) -> str:
    return f"`{_commit(value)}`" if field == "git_commit" and isinstance(value, str) else f"`{value!r}`"


def _notes(rows: list[dict]) -> list[str]:
    """The errata of the receipts in a table, once per (field, reason), each receipt with its evidence."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        for e in r.get("_errata", []):
            groups.setdefault((e["field"], e["reason"]), []).append(
                f"  - `{r['_name']}`: {_value(e['field'], e['recorded'])} corrected to "
                f"{_value(e['field'], e['corrected'])}. Evidence: {e['evidence']}."
            )
    if not groups:
        return []
    lines = ["", "\\* corrected by `receipts/errata.jsonl` (the receipt files stay as written):", ""]
    for (field, reason), items in groups.items():
        lines += [f"- {field}: {reason}", *items]
    return lines


def _items(report: dict, receipt: dict) -> str:
    """How many items were scored, and whether the holdout items that chose a program were left out."""
    left_out = len((receipt.get("excluded") or {}).get("items", []))
    return _n(report) + (f" ({left_out} gate items left out)" if left_out else "")


def _shown_evals(evals: list[dict]) -> list[dict]:
    """The largest full runs over all holdout items, and the largest runs that left the gate items out."""
    shown = []
    for clean in (False, True):
        group = [r for r in evals if ("excluded" in r) == clean]
        if group:
            largest = max(r["report"]["n"] for r in group)
            shown += [r for r in group if r["report"]["n"] == largest]
    return sorted(shown, key=lambda r: r["created_at"])


def _holdout_runs(receipts: list[dict], goldset: str) -> list[dict]:
    """The gold set's holdout evaluations, oldest first."""
    return sorted((r for r in receipts if r["kind"] == "eval" and r["report"]["goldset"] == goldset
                   and r["report"]["split"] == "holdout"), key=lambda r: r["created_at"])


def paired(receipts: list[dict]) -> list[str]:
    """Base against each compiled version on the same holdout items that chose nothing.

    A version's newest complete run is paired with the newest base run over the same items with the same
    model file; the row names both runs' commits, so a pair whose code differs beyond the program shows it.
    """
    from sme_mcp.optimize.stats import mcnemar_exact

    lines = ["", "Paired on the same holdout items, none of which chose either program, with the same model "
             "(newest complete runs):", "",
             "| gold set | items | base commit | base % | program | program commit | program % | fixed | broken | "
             "McNemar p |", "|---|---|---|---|---|---|---|---|---|---|"]
    rows = 0
    for name in goldsets(receipts):
        runs = [r for r in _holdout_runs(receipts, name) if "excluded" in r and r["report"].get("complete", True)]
        newest: dict[str, dict] = {}
        for r in runs:
            if r["report"]["program_version"] is not None:
                newest[r["report"]["program_version"]] = r

        def key(r: dict) -> tuple:
            return frozenset(i["id"] for i in r["items"]), r["report"]["lm"].get("model_file")

        for version, r in newest.items():
            bases = [b for b in runs if b["report"]["program_version"] is None and key(b) == key(r)]
            if not bases:
                continue
            base = bases[-1]
            a = {i["id"]: i["correct"] for i in base["items"]}
            b = {i["id"]: i["correct"] for i in r["items"]}
            ids = sorted(a)
            broken, fixed, p = mcnemar_exact([a[i] for i in ids], [b[i] for i in ids])  # (only base, only it, p)
            lines.append(f"| {name} | {len(ids)} | {_commit(base.get('git_commit'))} | "
                         f"{_pct(base['report']['score'])} | {version} | {_commit(r.get('git_commit'))} | "
                         f"{_pct(r['report']['score'])} | {fixed} | {broken} | {p:.3g} |")
            rows += 1
    return lines if rows else []


def _comparable(r: dict, newest: dict, ids: set[str]) -> bool:
    """Whether `r` ran the same program on the same model at another commit, and scored every item of `ids`."""
    return (r["report"]["program_version"] == newest["report"]["program_version"]
            and r["report"]["lm"].get("model_file") == newest["report"]["lm"].get("model_file")
            and r.get("git_commit") != newest.get("git_commit") and r["report"].get("complete", True)
            and ids <= {i["id"] for i in r.get("items", [])})


def across_commits(receipts: list[dict]) -> list[str]:
    """Each gold set's newest holdout run against the newest earlier run of the same program and model at another
    commit that scored all of its items: what a change of code (not of program) did, item by item.

    The newest run may have been stopped early; it is then paired on the items it scored, and says so.
    """
    from sme_mcp.optimize.stats import mcnemar_exact

    lines = ["", "The newest holdout run against an earlier run of the same program and model at another commit, "
             "on the same items (what a change of code did):", "",
             "| gold set | program | items | earlier commit | earlier % | newer commit | newer % | fixed | broken | "
             "McNemar p |", "|---|---|---|---|---|---|---|---|---|---|"]
    rows = 0
    for name in goldsets(receipts):
        runs = _holdout_runs(receipts, name)
        if len(runs) < 2:
            continue
        newest = runs[-1]
        ids = {i["id"] for i in newest.get("items", [])}
        earlier = [r for r in runs[:-1] if _comparable(r, newest, ids)]
        if not ids or not earlier:
            continue
        old = earlier[-1]
        a = {i["id"]: i["correct"] for i in old["items"]}
        b = {i["id"]: i["correct"] for i in newest["items"]}
        order = sorted(ids)
        broken, fixed, p = mcnemar_exact([a[i] for i in order], [b[i] for i in order])
        items = str(len(order)) if newest["report"].get("complete", True) else \
            f"{len(order)} (the newer run stopped after {len(order)} of {newest['report']['planned']})"
        lines.append(f"| {name} | {newest['report']['program_version'] or 'base'} | {items} | "
                     f"{_commit(old.get('git_commit'))} | {_pct(sum(a[i] for i in order) / len(order))} | "
                     f"{_commit(newest.get('git_commit'))} | {_pct(sum(b[i] for i in order) / len(order))} | "
                     f"{fixed} | {broken} | {p:.3g} |")
        rows += 1
    return lines if rows else []


def table(receipts: list[dict]) -> str:
    lines = [
        "| gold set | program | commit | holdout items | score % | 95% CI % | model | receipt |",
        "|---|---|---|---|---|---|---|---|",
    ]
    shown: list[dict] = []
    for name in goldsets(receipts):
        evals = [r for r in receipts if r["kind"] == "eval" and r["report"]["goldset"] == name
                 and r["report"]["split"] == "holdout"]
        if not evals:
            lines.append(f"| {name} | – | – | – | not measured yet | – | – | – |")
            continue
        for r in _shown_evals(evals):
            rep = r["report"]
            extra = f" (token F1 {_pct(rep['mean_f1'])})" if rep.get("mean_f1") is not None else ""
            program = _marked(r, "report.program_version", rep["program_version"] or "base")
            commit = _marked(r, "git_commit", _commit(r.get("git_commit")))
            lines.append(
                f"| {name} | {program} | {commit} | {_items(rep, r)} | "
                f"{_pct(rep['score'])}{extra} | {_pct(rep['ci_low'])}–{_pct(rep['ci_high'])} | "
                f"{rep['lm'].get('model_file', '?')} | {_link(r, ('report.program_version', 'git_commit'))} |"
            )
            shown.append(r)
    lines += _notes(shown)
    lines += paired(receipts)
    lines += across_commits(receipts)
    optimizations = sorted((r for r in receipts if r["kind"] == "optimize"), key=lambda r: r["created_at"])
    if optimizations:
        lines += ["", "| gold set | optimizer | commit | gate items | baseline % (CI) | candidate % (CI) | delta | "
                  "McNemar p | promoted | holdout (chose nothing): baseline → candidate % | receipt |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in optimizations:
            rep, req = r["report"], r["report"]["request"]
            b, c = rep["baseline"], rep["candidate"]
            link = _link(r, ("git_commit",))
            # Before gates moved to dev, the gate ran on the first holdout items and nothing else was reported.
            gate = f"dev {c['n']}" if rep.get("gate_split") == "dev" else f"holdout[:{c['n']}]"
            hb, hc = rep.get("holdout_baseline"), rep.get("holdout_candidate")
            held = (f"{_pct(hb['score'])} → {_pct(hc['score'])} (n {hc['n']}, p {rep['holdout_mcnemar']['p']:.3g})"
                    if hb and hc else "–")
            lines.append(
                f"| {req['goldset']} | {req['optimizer']}/{req['budget']} | "
                f"{_marked(r, 'git_commit', _commit(r.get('git_commit')))} | {gate} | "
                f"{_pct(b['score'])} ({_pct(b['ci_low'])}–{_pct(b['ci_high'])}) | "
                f"{_pct(c['score'])} ({_pct(c['ci_low'])}–{_pct(c['ci_high'])}) | {100 * rep['delta']:+.1f} | "
                f"{rep['mcnemar']['p']:.3g} | {'yes' if rep['promoted'] else 'no'} | {held} | {link} |"
            )
        lines += _notes(optimizations)
    customs: dict[tuple, dict] = {}
    for r in sorted((r for r in receipts if r["kind"] == "eval" and r["report"]["split"] == "custom"),
                    key=lambda r: r["created_at"]):
        expert = r.get("expert_settings") or {}
        key = (r["report"]["goldset"], _relative(r["report"]["path"]), expert.get("retrieval_k"),
               expert.get("retrieval_min_similarity"), r["report"]["n"], expert.get("general_reasoning", True),
               expert.get("retrieval_keep_sentences") or 0, expert.get("retrieval_sentence_window", 1),
               expert.get("math_word_problems") or "reasoning", bool(expert.get("general_draft_first")),
               bool(expert.get("general_brief_reasoning")), bool(expert.get("general_judge_grounding")))
        customs[key] = r  # the newest run of each configuration (receipts before the setting reasoned)
    if customs:
        lines += ["", "| gold-set file | expert | retrieval | n | exact match % | 95% CI % | token F1 % | receipt |",
                  "|---|---|---|---|---|---|---|---|"]
        for (goldset, path, k, floor, _, reasoning, keep, window, word_problems, draft_first, brief,
             judge), r in customs.items():
            rep = r["report"]
            retrieval = "–" if k is None else "off (closed-book)" if k == 0 else f"top {k}, cosine ≥ {floor}"
            if keep and k:  # passages cut to the sentences covering most of the question
                retrieval += f", {keep} sentence(s) ±{window} per passage"
            f1 = _pct(rep["mean_f1"]) if rep.get("mean_f1") is not None else "–"
            program = ((rep["program_version"] or "base") + ("" if reasoning else ", reasoning off")
                       + (", word problems by program" if word_problems == "program" else "")
                       + (", draft first" if draft_first else "") + (", brief reasoning" if brief and reasoning else "")
                       + (", grounding judged" if judge else ""))
            lines.append(f"| `{path}` | {goldset} ({program}) | {retrieval} | {_n(rep)} | "
                         f"{_pct(rep['score'])} | {_pct(rep['ci_low'])}–{_pct(rep['ci_high'])} | {f1} | "
                         f"{_link(r, ())} |")
        lines += _notes(list(customs.values()))
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
