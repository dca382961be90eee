"""The README's results table is generated from receipts/ and must match them (never hand-edited)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_results_table_matches_the_receipts():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "receipts_table.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, "README table is stale: run .venv/bin/python scripts/receipts_table.py"


def _eval_receipt(name: str, created: str, n: int, correct: int, path: str, k: int | None) -> dict:
    return {"_name": name, "kind": "eval", "created_at": created,
            "expert_settings": {} if k is None else {"retrieval_k": k, "retrieval_min_similarity": 0.35},
            "report": {"goldset": "general", "split": "custom", "path": path, "n": n, "correct": correct,
                       "score": correct / n, "ci_low": 0.1, "ci_high": 0.9, "mean_f1": 0.5,
                       "program_version": None, "lm": {}}}


def test_custom_goldset_runs_get_one_row_per_configuration_the_newest_winning():
    sys.path.insert(0, str(ROOT / "scripts"))
    from receipts_table import table

    squad = "/somewhere/clone/docs/demo_corpus/questions.jsonl"
    receipts = [
        _eval_receipt("old.json", "2026-11-22T01:00:00Z", 100, 10, squad, 3),
        _eval_receipt("new.json", "2026-11-22T02:00:00Z", 100, 40, squad, 3),
        _eval_receipt("closed.json", "2026-11-22T03:00:00Z", 100, 20, squad, 0),
    ]
    rows = [line for line in table(receipts).splitlines() if "docs/demo_corpus/questions.jsonl" in line]
    assert len(rows) == 2
    assert "top 3, cosine ≥ 0.35" in rows[0] and "| 40.0 |" in rows[0] and "new.json" in rows[0]
    assert "off (closed-book)" in rows[1] and "| 20.0 |" in rows[1] and "closed.json" in rows[1]
    assert "/somewhere/clone" not in table(receipts)


def test_a_run_with_passages_cut_to_sentences_is_a_configuration_of_its_own():
    sys.path.insert(0, str(ROOT / "scripts"))
    from receipts_table import table

    squad = "/somewhere/clone/docs/demo_corpus/questions.jsonl"
    whole = _eval_receipt("whole.json", "2026-11-22T01:00:00Z", 60, 30, squad, 3)
    cut = _eval_receipt("cut.json", "2026-11-22T02:00:00Z", 60, 29, squad, 3)
    cut["expert_settings"].update(retrieval_keep_sentences=2, retrieval_sentence_window=1)
    rows = [line for line in table([whole, cut]).splitlines() if "docs/demo_corpus/questions.jsonl" in line]
    assert len(rows) == 2 and "whole.json" in rows[0] and "cut.json" in rows[1]
    assert "sentence" not in rows[0] and "2 sentence(s) ±1 per passage" in rows[1]


def test_word_problems_by_program_are_a_configuration_of_their_own():
    sys.path.insert(0, str(ROOT / "scripts"))
    from receipts_table import table

    problems = "/tmp/sme-bench-wp-x/math_dev_word_problems.jsonl"
    reasoning = _eval_receipt("cot.json", "2026-12-07T01:00:00Z", 73, 40, problems, None)
    program = _eval_receipt("pot.json", "2026-12-07T02:00:00Z", 73, 45, problems, None)
    for receipt, style in ((reasoning, "reasoning"), (program, "program")):
        receipt["report"]["goldset"] = "math"
        receipt["expert_settings"] = {"react_max_iters": 5, "math_word_problems": style}
    rows = [line for line in table([reasoning, program]).splitlines() if "math_dev_word_problems.jsonl" in line]
    assert len(rows) == 2 and "cot.json" in rows[0] and "pot.json" in rows[1]
    assert "by program" not in rows[0] and "word problems by program" in rows[1]


def test_general_answers_drafted_first_are_a_configuration_of_their_own():
    sys.path.insert(0, str(ROOT / "scripts"))
    from receipts_table import table

    squad = "/tmp/sme-bench-draft/squad_tune60.jsonl"
    passages = _eval_receipt("passages.json", "2026-12-07T01:00:00Z", 60, 30, squad, 3)
    drafted = _eval_receipt("drafted.json", "2026-12-07T02:00:00Z", 60, 31, squad, 3)
    passages["expert_settings"]["general_draft_first"] = False
    drafted["expert_settings"]["general_draft_first"] = True
    rows = [line for line in table([passages, drafted]).splitlines() if "squad_tune60.jsonl" in line]
    assert len(rows) == 2 and "passages.json" in rows[0] and "drafted.json" in rows[1]
    assert "draft first" not in rows[0] and "draft first" in rows[1]


def test_brief_reasoning_and_a_judged_grounding_are_configurations_of_their_own():
    sys.path.insert(0, str(ROOT / "scripts"))
    from receipts_table import table

    squad = "/tmp/sme-bench-brief/squad_tune60.jsonl"
    step = _eval_receipt("step.json", "2026-12-07T01:00:00Z", 60, 28, squad, 3)
    brief = _eval_receipt("brief.json", "2026-12-07T02:00:00Z", 60, 24, squad, 3)
    judged = _eval_receipt("judged.json", "2026-12-07T03:00:00Z", 60, 30, squad, 3)
    brief["expert_settings"]["general_brief_reasoning"] = True
    judged["expert_settings"]["general_judge_grounding"] = True
    rows = [line for line in table([step, brief, judged]).splitlines() if "squad_tune60.jsonl" in line]
    assert len(rows) == 3 and "step.json" in rows[0] and "brief.json" in rows[1] and "judged.json" in rows[2]
    assert "brief" not in rows[0] and "brief reasoning" in rows[1] and "grounding judged" in rows[2]


def test_holdout_rows_keep_every_largest_run_oldest_first_with_its_commit():
    sys.path.insert(0, str(ROOT / "scripts"))
    from receipts_table import table

    def holdout(name: str, created: str, n: int, commit: str) -> dict:
        body = _eval_receipt(name, created, n, n // 2, "/x/goldsets/math/holdout.jsonl", None)
        body["report"].update(goldset="math", split="holdout", mean_f1=None)
        return body | {"git_commit": commit}

    receipts = [
        holdout("small.json", "2026-11-22T01:00:00Z", 30, "aaaaaaa1"),
        holdout("before.json", "2026-11-22T02:00:00Z", 200, "bbbbbbb2"),
        holdout("after.json", "2026-11-27T02:00:00Z", 200, "ccccccc3"),
    ]
    rows = [line for line in table(receipts).splitlines() if line.startswith("| math | base")]
    assert [("before.json" in r, "after.json" in r) for r in rows] == [(True, False), (False, True)]
    assert "| bbbbbbb |" in rows[0] and "| ccccccc |" in rows[1]
    assert "| router | – | – | – | not measured yet |" in table(receipts)


def test_errata_correct_a_field_in_the_tables_without_touching_the_receipt(tmp_path):
    import json

    import pytest

    from sme_mcp.optimize.receipts import apply_errata

    receipt = {"kind": "eval", "report": {"program_version": "v1"}}
    (tmp_path / "r.json").write_text(json.dumps(receipt))
    erratum = {"receipt": "r.json", "field": "report.program_version", "recorded": "v1", "corrected": None,
               "reason": "why", "evidence": "how we know"}
    (tmp_path / "errata.jsonl").write_text(json.dumps(erratum) + "\n")
    loaded = apply_errata(tmp_path, [dict(json.loads((tmp_path / "r.json").read_text()), _name="r.json")])
    assert loaded[0]["report"]["program_version"] is None and loaded[0]["_errata"] == [erratum]
    assert json.loads((tmp_path / "r.json").read_text()) == receipt  # the file stays as written
    with pytest.raises(ValueError, match="expects report.program_version = 'v1'"):
        apply_errata(tmp_path, [{"_name": "r.json", "report": {"program_version": "v2"}}])


def test_the_committed_errata_apply_to_committed_receipts():
    import json

    from sme_mcp.optimize.receipts import load_receipts

    errata = ROOT / "receipts" / "errata.jsonl"
    names = {json.loads(line)["receipt"] for line in errata.read_text().splitlines() if line.strip()}
    loaded = {r["_name"]: r for r in load_receipts(ROOT / "receipts")}
    assert names <= set(loaded) and all(loaded[n].get("_errata") for n in names)


def _holdout(name: str, created: str, commit: str, goldset: str = "router") -> dict:
    body = _eval_receipt(name, created, 200, 100, f"/x/goldsets/{goldset}/holdout.jsonl", None)
    body["report"].update(goldset=goldset, split="holdout", mean_f1=None)
    return body | {"git_commit": commit}


def test_a_dirty_commit_stays_dirty_in_the_table():
    sys.path.insert(0, str(ROOT / "scripts"))
    from receipts_table import table

    commit = "0123456789abcdef0123456789abcdef01234567"
    rows = table([_holdout("a.json", "2026-11-22T01:00:00Z", commit + "-dirty"),
                  _holdout("b.json", "2026-11-22T02:00:00Z", commit)]).splitlines()
    assert "| 0123456-dirty |" in next(r for r in rows if "a.json" in r)
    assert "| 0123456 |" in next(r for r in rows if "b.json" in r)


def test_a_corrected_commit_is_shown_marked_with_its_reason_and_evidence(tmp_path):
    import json

    from sme_mcp.optimize.receipts import load_receipts

    sys.path.insert(0, str(ROOT / "scripts"))
    from receipts_table import table

    (tmp_path / "r.json").write_text(json.dumps(_holdout("r.json", "2026-11-22T01:00:00Z", "f" * 40 + "-dirty")))
    (tmp_path / "errata.jsonl").write_text(json.dumps(
        {"receipt": "r.json", "field": "git_commit", "recorded": "f" * 40 + "-dirty", "corrected": "e" * 40,
         "reason": "the commit at the end of the run.", "evidence": "git log"}) + "\n")
    text = table(load_receipts(tmp_path))
    row = next(line for line in text.splitlines() if "r.json" in line and line.startswith("| router"))
    assert "| eeeeeee* |" in row and "| base |" in row  # the mark sits on the corrected column
    assert "- git_commit: the commit at the end of the run." in text
    assert "`r.json`: `fffffff-dirty` corrected to `eeeeeee`. Evidence: git log." in text


def test_the_readme_shows_the_commits_at_run_start():
    readme = (ROOT / "README.md").read_text()
    # Recorded as the commits at the end of these runs (67edfcd, 243595f); corrected in receipts/errata.jsonl.
    assert "| router | base | 36e7b48* |" in readme
    assert "| code | base | 254b202* |" in readme
    assert "| router | bootstrap/light | 3fcca35* |" in readme


def _clean_holdout(name: str, created: str, version: str | None, outcomes: list[bool]) -> dict:
    n = len(outcomes)
    return {"_name": name, "kind": "eval", "created_at": created, "excluded": {"items": ["h0"], "receipts": []},
            "items": [{"id": f"h{i + 1}", "correct": ok} for i, ok in enumerate(outcomes)],
            "report": {"goldset": "math", "split": "holdout", "path": "x", "n": n, "correct": sum(outcomes),
                       "score": sum(outcomes) / n, "ci_low": 0.1, "ci_high": 0.9, "program_version": version,
                       "complete": True, "lm": {}}}


def test_base_and_a_compiled_version_are_paired_on_the_same_clean_items():
    sys.path.insert(0, str(ROOT / "scripts"))
    from receipts_table import table

    receipts = [
        _clean_holdout("base.json", "2026-12-01T01:00:00Z", None, [True, False, False, True]),
        _clean_holdout("v1.json", "2026-12-01T02:00:00Z", "v1", [True, True, True, False]),
    ]
    text = table(receipts)
    assert "140" not in text and "(1 gate items left out)" in text
    (row,) = [line for line in text.splitlines() if line.startswith("| math | 4 |")]
    # v1 fixed two items base missed and broke one base got right.
    assert "| 50.0 | v1 | ? | 75.0 | 2 | 1 |" in row


def test_a_code_change_is_paired_with_the_earlier_run_on_the_items_the_newer_one_scored():
    sys.path.insert(0, str(ROOT / "scripts"))
    from receipts_table import table

    old = _clean_holdout("old.json", "2026-11-22T01:00:00Z", None, [True, False, False, True, False]) | {
        "git_commit": "aaaaaaa1"}
    new = _clean_holdout("new.json", "2026-12-02T01:00:00Z", None, [True, True, True, False]) | {
        "git_commit": "bbbbbbb2"}
    new["report"].update(complete=False, planned=5, n=4)
    other_model = _clean_holdout("m.json", "2026-11-23T01:00:00Z", None, [False] * 5) | {"git_commit": "ccccccc3"}
    other_model["report"]["lm"] = {"model_file": "other.gguf"}
    text = table([old, other_model, new])
    (row,) = [line for line in text.splitlines() if "the newer run stopped" in line]
    # Paired on the 4 items scored: the earlier run had 2 of them right, the newer 3; 2 fixed, 1 broken.
    assert row == ("| math | base | 4 (the newer run stopped after 4 of 5) | aaaaaaa | 50.0 | bbbbbbb | 75.0 | 2 | 1 | "
                   "1 |")
    assert "ccccccc" not in text.split("what a change of code did")[1].split("\n\n")[1]
    assert "what a change of code did" not in table([old])
