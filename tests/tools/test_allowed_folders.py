"""The client-path boundary (`AllowedFolders`) and the folder walk it bounds, without MCP or a model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sme_mcp.tools.doc_index import MAX_LISTED_SKIPPED, DocumentIndex, IngestReport, _Walk
from sme_mcp.tools.file_access import UNLIMITED, AccessDenied, AllowedFolders, FileRefused, WalkLimits, read_bytes


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "a").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (allowed / "a" / "doc.md").write_text("# Doc\n")
    (allowed / "a" / "loop").symlink_to(allowed, target_is_directory=True)  # a cycle
    (allowed / "out.md").symlink_to(outside / "secret.txt")
    return {"allowed": allowed, "outside": outside}


def test_paths_resolve_inside_or_are_refused_alike(tree):
    folders = AllowedFolders([tree["allowed"]], "SME_TEST_ROOTS")
    assert folders.resolve(str(tree["allowed"] / "a" / "doc.md")) == tree["allowed"] / "a" / "doc.md"
    assert folders.resolve(f"{tree['allowed']}/a/loop/a/doc.md") == tree["allowed"] / "a" / "doc.md"
    refusals = []
    for raw in [tree["outside"] / "secret.txt", tree["outside"] / "missing", tree["allowed"] / "out.md",
                f"{tree['allowed']}/../outside/secret.txt", "/", "/etc/passwd"]:
        with pytest.raises(AccessDenied) as refused:
            folders.resolve(str(raw))
        refusals.append(str(refused.value).replace(repr(str(raw)), "PATH"))
    assert len(set(refusals)) == 1 and "SME_TEST_ROOTS" in refusals[0]
    for raw, why in [("relative/x.md", "relative"), ("/a\x00b", "NUL"), ("", "empty")]:
        with pytest.raises(AccessDenied, match=why):
            folders.resolve(raw)
    with pytest.raises(AccessDenied, match="SME_NONE"):
        AllowedFolders([], "SME_NONE").resolve(str(tree["allowed"]))


def test_reads_refuse_special_files_and_files_that_grow_too_large(tree):
    folders = AllowedFolders([tree["allowed"]], "SME_TEST_ROOTS")
    fifo = tree["allowed"] / "pipe.md"
    os.mkfifo(fifo)
    with pytest.raises(FileRefused, match="not a regular file"):
        read_bytes(fifo, 100, folders)  # does not block on the FIFO
    with pytest.raises(FileRefused, match="too large"):
        read_bytes(tree["allowed"] / "a" / "doc.md", 3, folders)
    with pytest.raises(OSError):  # a symlink where the resolved path should be: not followed
        read_bytes(tree["allowed"] / "out.md", 100, folders)
    assert read_bytes(tree["allowed"] / "a" / "doc.md", 100, folders) == b"# Doc\n"


def test_the_walk_ends_on_symlink_cycles_and_follows_links_only_inside(tree):
    report = IngestReport(collection="c")
    walk = _Walk(UNLIMITED, AllowedFolders([tree["allowed"]], "X"), report)
    found = walk.folder(tree["allowed"])
    assert found == [tree["allowed"] / "a" / "doc.md"]
    assert [Path(p.path).name for p in report.skipped] == ["out.md"]
    cli = _Walk(UNLIMITED, None, IngestReport(collection="c"))  # the command line: any path the user names
    assert cli.folder(tree["allowed"]) == [tree["allowed"] / "a" / "doc.md", tree["outside"] / "secret.txt"]


def test_a_report_lists_a_bounded_number_of_skipped_files(tmp_path):
    for i in range(MAX_LISTED_SKIPPED + 20):
        (tmp_path / "docs").mkdir(exist_ok=True)
        (tmp_path / "docs" / f"f{i}.bin").write_bytes(b"x")
    index = DocumentIndex(tmp_path / "index", embedder=None)  # type: ignore[arg-type]  # nothing is embedded
    report = index._walk([tmp_path / "docs"], IngestReport(collection="c"), None, WalkLimits())
    assert len(report[0]) == MAX_LISTED_SKIPPED + 20  # the walk finds them; ingest() lists at most the cap
