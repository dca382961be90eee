"""The track record behind each verification's confidence (experts/track_record.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dspy
from dspy.utils import DummyLM

from sme_mcp.config.settings import Settings
from sme_mcp.experts.service import ExpertService
from sme_mcp.experts.track_record import MIN_ANSWERS, build, confidence

ROOT = Path(__file__).resolve().parents[2]


def receipt(name: str, created: str, goldset: str, items: list[tuple[str, bool]]) -> dict:
    return {"_name": name, "kind": "eval", "created_at": created, "git_commit": "abc",
            "report": {"goldset": goldset, "split": "holdout"},
            "items": [{"correct": ok, "verification": {"method": "tests", "outcome": outcome}}
                      for outcome, ok in items]}


def test_the_largest_receipt_with_verified_items_counts_and_rare_outcomes_get_no_confidence():
    old = receipt("old.json", "2026-11-01T00:00:00Z", "code", [("passed", False)] * 29)
    aimed = receipt("aimed.json", "2026-12-05T00:00:00Z", "code", [("passed", True)] * 12)  # a few chosen items
    new = receipt("new.json", "2026-12-01T00:00:00Z", "code", [("passed", True)] * 18 + [("passed", False)] * 2
                  + [("partial", True)] * (MIN_ANSWERS - 1))
    unverified = {"_name": "u.json", "kind": "eval", "created_at": "2026-12-02T00:00:00Z",
                  "report": {"goldset": "code", "split": "holdout"}, "items": [{"correct": True}]}
    record = build([new, unverified, aimed, old])
    assert record["code"]["receipt"] == "new.json"
    assert record["code"]["outcomes"] == {"tests/partial": {"n": 9, "right": 9}, "tests/passed": {"n": 20, "right": 18}}
    share, basis = confidence("code", "tests", "passed", record)  # (18 + 1) / (20 + 2)
    assert share == 0.864 and "18 of 20" in basis and "receipts/new.json" in basis
    assert confidence("code", "tests", "partial", record) is None  # 9 answers: too few to say
    assert confidence("general", "grounding", "grounded", record) is None


def test_the_shipped_record_matches_the_receipts():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "track_record.py"), "--check"], capture_output=True)
    assert out.returncode == 0, "experts/track_record.json is stale: run .venv/bin/python scripts/track_record.py"


def test_an_answer_carries_the_confidence_of_its_outcome(tmp_path: Path, monkeypatch) -> None:
    from sme_mcp.experts import track_record

    record = {"code": {"receipt": "r.json", "split": "holdout", "git_commit": "abc",
                       "outcomes": {"tests/passed": {"n": 38, "right": 35}}}}
    monkeypatch.setattr(track_record, "_shipped", lambda: record)
    svc = ExpertService(Settings(data_dir=tmp_path), local=None)
    lm = DummyLM([{"reasoning": "Square it.", "code": "def square(n):\n    return n * n", "explanation": "n*n."}])
    try:
        with dspy.context(lm=lm):
            answer = svc.ask("Write square(n).\nassert square(3) == 9", domain="code", lm=lm)
    finally:
        svc.close()
    assert answer.verification.outcome == "passed" and answer.verification.confidence == 0.9  # 36/40
    assert "35 of 38" in answer.verification.confidence_basis
