"""Holdout items that chose a program never count in its holdout score."""

from __future__ import annotations

import json
from pathlib import Path

from sme_mcp.config.settings import REPO_DIR, Settings
from sme_mcp.experts.service import ExpertService
from sme_mcp.optimize.evaluate import run_eval
from sme_mcp.optimize.selection import clean_holdout_score, holdout_items_that_chose


def _receipt(directory: Path, name: str, body: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(body))


def test_the_shipped_programs_were_chosen_on_the_first_sixty_holdout_items():
    holdout = [json.loads(line)["id"] for line in (REPO_DIR / "goldsets/math/holdout.jsonl").read_text().splitlines()]
    chose = holdout_items_that_chose(REPO_DIR / "receipts", "math")
    assert set(chose["optimize-math-20261127T171610Z.json"]) == set(holdout[:60])


def test_gates_on_dev_choose_no_holdout_items(tmp_path):
    items = [{"id": "h1", "baseline": True, "candidate": True}]
    _receipt(tmp_path, "optimize-math-A.json", {"report": {"request": {"goldset": "math"}}, "holdout_items": items})
    _receipt(tmp_path, "optimize-math-B.json", {"report": {"request": {"goldset": "math"}, "gate_split": "dev"},
                                                "holdout_items": [{"id": "h2"}]})
    assert holdout_items_that_chose(tmp_path, "math") == {"optimize-math-A.json": ["h1"]}


def test_run_eval_leaves_the_gate_items_out_and_says_so(tmp_path):
    goldsets, receipts = tmp_path / "goldsets", tmp_path / "receipts"
    (goldsets / "math").mkdir(parents=True)
    rows = [{"id": f"h{i}", "domain": "math", "question": f"What is {i} + {i}?", "answer": str(2 * i)}
            for i in range(4)]
    (goldsets / "math" / "holdout.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    _receipt(receipts, "optimize-math-X.json", {"report": {"request": {"goldset": "math"}},
                                                "holdout_items": [{"id": "h0"}, {"id": "h1"}]})

    # Plain sums take the exact path, so the real service scores them without any LM.
    service = ExpertService(Settings(goldsets_dir=goldsets, receipts_dir=receipts), None)
    try:
        report, items = run_eval(service, "math", "holdout")
    finally:
        service.close()
    assert [i.id for i in items] == ["h2", "h3"] and report.excluded == 2 and report.correct == 2
    body = json.loads((receipts / report.receipt).read_text())
    assert body["excluded"]["items"] == ["h0", "h1"] and body["excluded"]["receipts"] == ["optimize-math-X.json"]
    assert clean_holdout_score(receipts, "math", report.program_version)["n"] == 2


def test_receipts_written_elsewhere_still_exclude_the_items_that_chose_the_shipped_programs(tmp_path):
    from sme_mcp.config.settings import SHIPPED_RECEIPTS_DIR

    own = Settings(receipts_dir=tmp_path / "receipts")  # e.g. an installed wheel's <data dir>/receipts
    assert own.receipt_dirs() == [tmp_path / "receipts", SHIPPED_RECEIPTS_DIR]
    assert sum(map(len, holdout_items_that_chose(own.receipt_dirs(), "math").values())) >= 60
    other = Settings(receipts_dir=tmp_path / "receipts", goldsets_dir=tmp_path / "goldsets")
    assert other.receipt_dirs() == [tmp_path / "receipts"]  # the shipped receipts are about the shipped gold sets
