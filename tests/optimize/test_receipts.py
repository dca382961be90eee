"""Receipts name the code that ran: the commit, dirty when the checkout differs from it, and errata applied on read."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sme_mcp.config.settings import REPO_DIR
from sme_mcp.optimize.receipts import apply_errata, git_commit, load_receipts, read_receipt, read_receipt_with_errata


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with the project's layout, everything committed."""
    root = tmp_path / "checkout"
    for name, text in {"pyproject.toml": "[project]\n", "experts/math.py": "x = 1\n", ".gitignore": "__pycache__/\n",
                       "receipts/.gitkeep": ""}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root


def test_a_clean_checkout_is_its_commit(repo):
    assert git_commit(repo) == git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize("path", ["compiled/math/v1.json", "experts/new_expert.py", "goldsets/math/holdout.jsonl",
                                  "scripts/tool.py", "bench/run.py", "server/x.py", "tools/x.py", "optimize/x.py"])
def test_an_untracked_file_in_the_project_makes_it_dirty(repo, path):
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text("{}\n")
    assert git_commit(repo) == git(repo, "rev-parse", "HEAD") + "-dirty"


def test_untracked_run_output_and_ignored_files_leave_it_clean(repo):
    (repo / "receipts" / "eval-math-holdout-X.json").write_text("{}\n")  # what runs write
    (repo / "data").mkdir()
    (repo / "data" / "cache.db").write_text("")
    (repo / "experts" / "__pycache__").mkdir()
    (repo / "experts" / "__pycache__" / "math.cpython-311.pyc").write_bytes(b"\0")  # ignored by .gitignore
    assert git_commit(repo) == git(repo, "rev-parse", "HEAD")


def test_a_changed_tracked_file_makes_it_dirty(repo):
    (repo / "receipts" / ".gitkeep").write_text("changed\n")  # anywhere, receipts/ included
    assert git_commit(repo).endswith("-dirty")
    git(repo, "checkout", "--", ".")
    (repo / "pyproject.toml").unlink()
    assert git_commit(repo).endswith("-dirty")


def test_outside_a_checkout_there_is_no_commit(tmp_path):
    assert git_commit(tmp_path) is None


def _write(directory: Path, name: str, body: dict, errata: list[dict]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(body))
    (directory / "errata.jsonl").write_text("".join(json.dumps(e) + "\n" for e in errata))


def _erratum(receipt: str, field: str, recorded: object, corrected: object) -> dict:
    return {"receipt": receipt, "field": field, "recorded": recorded, "corrected": corrected, "reason": "why",
            "evidence": "how we know"}


def test_several_errata_of_one_receipt_apply_in_order(tmp_path):
    body = {"kind": "eval", "git_commit": "aaa-dirty", "report": {"program_version": "v1", "n": 3}}
    errata = [
        _erratum("r.json", "git_commit", "aaa-dirty", "bbb"),
        _erratum("other.json", "git_commit", "x", "y"),  # another receipt's
        _erratum("r.json", "report.program_version", "v1", None),
        _erratum("r.json", "git_commit", "bbb", "ccc"),  # a correction of the correction
    ]
    _write(tmp_path, "r.json", body, errata)
    (loaded,) = load_receipts(tmp_path)
    assert loaded["git_commit"] == "ccc" and loaded["report"] == {"program_version": None, "n": 3}
    assert loaded["_errata"] == [errata[0], errata[2], errata[3]]
    assert json.loads((tmp_path / "r.json").read_text()) == body


def test_an_erratum_of_a_missing_field_is_a_clear_error(tmp_path):
    _write(tmp_path, "r.json", {"kind": "eval"}, [_erratum("r.json", "report.program_version", "v1", None)])
    with pytest.raises(ValueError, match="has no report.program_version"):
        apply_errata(tmp_path, [{"_name": "r.json", "kind": "eval"}])


def test_read_receipt_with_errata_returns_the_corrected_receipt_and_leaves_the_file(tmp_path):
    body = {"kind": "eval", "git_commit": "aaa-dirty", "report": {"program_version": "v1"}}
    errata = [_erratum("r.json", "git_commit", "aaa-dirty", "bbb"),
              _erratum("r.json", "report.program_version", "v1", None)]
    _write(tmp_path, "r.json", body, errata)
    (tmp_path / "clean.json").write_text(json.dumps(body))
    got = read_receipt_with_errata(tmp_path, "r.json")
    assert got == {"kind": "eval", "git_commit": "bbb", "report": {"program_version": None}, "_errata": errata}
    assert read_receipt(tmp_path, "r.json") == body == json.loads((tmp_path / "r.json").read_text())
    assert read_receipt_with_errata(tmp_path, "clean.json") == body  # no errata: no `_errata` key
    with pytest.raises(FileNotFoundError):
        read_receipt_with_errata(tmp_path, "../r.json")
    with pytest.raises(FileNotFoundError):
        read_receipt_with_errata(tmp_path, "missing.json")


def _run_start(receipt: dict) -> datetime:
    report = receipt["report"]
    if report.get("started_at"):
        return datetime.fromisoformat(report["started_at"].replace("Z", "+00:00"))
    return datetime.fromisoformat(receipt["created_at"].replace("Z", "+00:00")) - timedelta(seconds=report["wall_s"])


def test_every_committed_receipt_names_a_commit_that_existed_when_its_run_began():
    """With errata applied, no receipt names a commit made after its run started (the end-of-run commit bug)."""
    out = subprocess.run(["git", "log", "--format=%H %cI"], cwd=REPO_DIR, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    committed = {h: datetime.fromisoformat(d) for h, d in (line.split() for line in out.stdout.splitlines())}
    checked, late = 0, []
    for receipt in load_receipts(REPO_DIR / "receipts"):
        commit = (receipt.get("git_commit") or "").removesuffix("-dirty")
        if commit not in committed:
            continue  # a shallow clone lacks it; nothing to compare
        checked += 1
        if committed[commit] > _run_start(receipt):
            late.append(f"{receipt['_name']}: {commit[:7]} committed {committed[commit]}, run began "
                        f"{_run_start(receipt)}")
    if not checked:
        pytest.skip("the receipts' commits are not in this clone's history")
    assert not late, "receipts name a commit made during their run (add an erratum):\n" + "\n".join(late)
