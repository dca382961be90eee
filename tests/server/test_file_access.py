"""What a client can make the server read: ingest_documents and run_eval's goldset_path, through MCP.

The boundary is the folders in `Settings.client_files`; everything else on the machine is out of reach,
and the replies never show a file's content nor say whether a path outside exists. The index here
embeds with a small deterministic fake, so these tests need no model.
"""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mcp import Client

from sme_mcp.config.settings import ClientFilesSettings, Settings
from sme_mcp.experts.service import ExpertService
from sme_mcp.server.app import build_server
from sme_mcp.tools.doc_index import DocumentIndex

SECRET = "SECRET-CANARY-5519"
KEY = "sk-live-QWERTY0987654321"


class FakeEmbedder:
    """Unit vectors from a hash of the text: stable, instant, no model."""

    model_name = "test/fake-embedder"
    dim = 16

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[: self.dim], dtype=np.uint8) for t in texts]
        vectors = np.asarray(rows, dtype=np.float32) + 1.0
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    outside, allowed, golds = tmp_path / "outside", tmp_path / "allowed", tmp_path / "golds"
    for folder in (outside / "inner", allowed / "sub", golds):
        folder.mkdir(parents=True)
    (outside / "secret.txt").write_text(f"# Private\n\n{SECRET} {KEY}\n")
    (outside / "inner" / "also-secret.md").write_text(f"# Also\n\n{SECRET}\n")
    (outside / "key.jsonl").write_text(json.dumps(KEY) + "\n")
    for path in (outside / "secret.txt", outside / "key.jsonl"):
        path.chmod(0o600)
    outside.chmod(0o700)
    (allowed / "doc.md").write_text("# Volcanoes\n\nMount Etna is an active volcano on Sicily.\n")
    (allowed / "sub" / "nested.md").write_text("# Tides\n\nThe harbour has two high tides a day.\n")
    (allowed / "link-out.md").symlink_to(outside / "secret.txt")
    (allowed / "linked-dir").symlink_to(outside, target_is_directory=True)
    (golds / "link-out.jsonl").symlink_to(outside / "key.jsonl")
    return {"outside": outside, "allowed": allowed, "golds": golds}


def make_service(tmp_path: Path, places: dict[str, Path], **files: Any) -> ExpertService:
    settings = Settings(data_dir=tmp_path / "data", receipts_dir=tmp_path / "receipts")
    settings.client_files = ClientFilesSettings(
        ingest_roots=[places["allowed"]], goldset_roots=[places["golds"]], **files)
    service = ExpertService(settings, None)
    service._documents = DocumentIndex(tmp_path / "index", FakeEmbedder())  # the fake instead of the real model
    return service


@pytest.fixture
def service(tmp_path: Path, places: dict[str, Path]) -> Iterator[ExpertService]:
    svc = make_service(tmp_path, places)
    yield svc
    svc.close()


def text_of(result: Any) -> str:
    return result.content[0].text if result.content else ""


@pytest.mark.anyio
async def test_ingest_refuses_every_path_outside_the_allowed_folders(service, places):
    outside, allowed = places["outside"], places["allowed"]
    attempts = [
        outside / "secret.txt", outside, f"{allowed}/../outside/secret.txt", allowed / "link-out.md",
        allowed / "linked-dir", f"{allowed}/linked-dir/inner", "/", "/etc", "/etc/shadow", "/proc/self/environ",
    ]
    async with Client(build_server(service)) as client:
        replies = {str(p): await client.call_tool("ingest_documents", {"paths": [str(p)]}) for p in attempts}
        collections = await client.call_tool("list_collections", {})
    for path, reply in replies.items():
        text = text_of(reply)
        assert reply.is_error, f"{path} was ingested: {text[:300]}"
        assert "outside the folders this server lets clients read" in text and str(allowed) in text, text
        assert SECRET not in text and KEY not in text and "passwd" not in text, text
    assert collections.structured_content["collections"] == []  # nothing was indexed


@pytest.mark.anyio
async def test_a_refusal_reads_the_same_whether_or_not_the_path_exists(service, places):
    outside = places["outside"]
    pairs = [(outside / "secret.txt", outside / "missing.txt"), (outside / "inner", outside / "no-such-folder"),
             (Path("/etc/passwd"), Path("/etc/no-such-file"))]
    async with Client(build_server(service)) as client:
        for present, absent in pairs:
            a = text_of(await client.call_tool("ingest_documents", {"paths": [str(present)]}))
            b = text_of(await client.call_tool("ingest_documents", {"paths": [str(absent)]}))
            assert a.replace(str(present), "PATH") == b.replace(str(absent), "PATH"), (a, b)
            a = text_of(await client.call_tool("run_eval", {"domain": "math", "goldset_path": str(present)}))
            b = text_of(await client.call_tool("run_eval", {"domain": "math", "goldset_path": str(absent)}))
            assert a.replace(str(present), "PATH") == b.replace(str(absent), "PATH"), (a, b)


@pytest.mark.anyio
async def test_ingest_of_the_allowed_folder_does_not_follow_links_out_of_it(service, places):
    allowed = places["allowed"]
    async with Client(build_server(service)) as client:
        reply = await client.call_tool("ingest_documents", {"paths": [str(allowed)]})
        ok = await client.call_tool("evaluate", {"expression": "2+2"})  # the server keeps serving
    assert not reply.is_error, text_of(reply)
    report = reply.structured_content
    assert sorted(Path(p).name for p in report["added"]) == ["doc.md", "nested.md"]
    skipped = {Path(p["path"]).name: p["reason"] for p in report["skipped"]}
    assert set(skipped) == {"link-out.md", "linked-dir"} and all("outside" in r for r in skipped.values())
    dumped = json.dumps(report)
    assert "secret" not in dumped and "inner" not in dumped and SECRET not in dumped  # no names from outside
    hits = service.documents.search("general", SECRET, k=10, mode="fts")
    assert all(SECRET not in h.text for h in hits) and all(str(places["outside"]) not in h.source for h in hits)
    assert ok.structured_content["result"] == "4"


@pytest.mark.anyio
async def test_a_path_named_many_times_or_inside_another_is_walked_once(tmp_path, places):
    allowed = places["allowed"]
    entries = 5  # doc.md, sub, link-out.md, linked-dir, and sub/nested.md
    service = make_service(tmp_path, places, max_walk_files=entries)
    try:
        async with Client(build_server(service)) as client:
            paths = [str(allowed)] * 50 + [str(allowed / "sub"), f"{allowed}/sub/../", str(allowed / "sub" / "..")]
            once = await client.call_tool("ingest_documents", {"paths": paths})
    finally:
        service.close()
    assert not once.is_error, text_of(once)
    assert once.structured_content["walk_limit"] is None  # each entry looked at once: within the budget of 5
    assert len(once.structured_content["added"]) == 2


@pytest.mark.anyio
async def test_walks_are_bounded_in_files_depth_and_time(tmp_path, places):
    allowed = places["allowed"]
    deep = allowed / "d1" / "d2" / "d3" / "d4"
    deep.mkdir(parents=True)
    (deep / "deep.md").write_text("# Deep\n\nFar down.\n")
    (allowed / "d1" / "shallow.md").write_text("# Shallow\n\nNear the top.\n")
    for i in range(30):
        (allowed / f"note{i:02d}.txt").write_text(f"Note number {i}.\n")
    results = {}
    for name, limits in {"files": {"max_walk_files": 10}, "depth": {"max_walk_depth": 2},
                         "time": {"max_walk_seconds": 1e-9}}.items():
        service = make_service(tmp_path / name, places, **limits)
        try:
            async with Client(build_server(service)) as client:
                results[name] = await client.call_tool("ingest_documents", {"paths": [str(allowed)]})
        finally:
            service.close()
    files = results["files"].structured_content
    assert files["walk_limit"].startswith("files") and len(files["added"]) <= 10
    depth = results["depth"].structured_content
    added = {Path(p).name for p in depth["added"]}
    assert depth["walk_limit"].startswith("depth") and "shallow.md" in added and "deep.md" not in added
    time_limited = results["time"].structured_content
    assert time_limited["walk_limit"].startswith("time") and time_limited["added"] == []


@pytest.mark.anyio
async def test_run_eval_reads_gold_sets_only_inside_the_allowed_folders(service, places):
    outside, golds = places["outside"], places["golds"]
    attempts = [outside / "key.jsonl", golds / "link-out.jsonl", f"{golds}/../outside/key.jsonl",
                "/proc/sys/kernel/pid_max", "/etc/passwd", "/dev/zero"]
    pid_max = Path("/proc/sys/kernel/pid_max").read_text().strip()
    async with Client(build_server(service)) as client:
        for path in attempts:
            reply = await client.call_tool("run_eval", {"domain": "math", "goldset_path": str(path)})
            text = text_of(reply)
            assert reply.is_error and "outside the folders" in text and str(golds) in text, text
            assert KEY not in text and KEY[:6] not in text and pid_max not in text, text


@pytest.mark.anyio
async def test_run_eval_errors_never_quote_the_file(service, places):
    golds = places["golds"]
    files = {
        "string.jsonl": json.dumps(KEY) + "\n",
        "number.jsonl": "4194304\n",
        "fields.jsonl": json.dumps({"id": "a", "domain": "math", "question": [SECRET]}) + "\n",
        "second.jsonl": json.dumps({"id": "a", "domain": "math", "question": "1+1", "answer": "2"}) + "\n"
                        + json.dumps({"id": 7, "domain": "math", "question": SECRET}) + "\n",
        "truncated.jsonl": '{"id": "a", "question": "' + SECRET,
    }
    for name, body in files.items():
        (golds / name).write_text(body)
    (golds / "binary.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(128, 256)) * 40)
    async with Client(build_server(service)) as client:
        replies = {n: await client.call_tool("run_eval", {"domain": "math", "goldset_path": str(golds / n)})
                   for n in [*files, "binary.jsonl"]}
    for name, reply in replies.items():
        text = text_of(reply)
        assert reply.is_error, name
        assert f"{name}:" in text, text  # names the file and line
        for shown in (KEY, KEY[:8], KEY[-8:], SECRET, "4194304", "input_value"):
            assert shown not in text, f"{name}: {text}"
        assert text.removeprefix("Error executing tool run_eval").strip(": ") != "", text  # never bare
    assert "second.jsonl:2" in text_of(replies["second.jsonl"]) and "id" in text_of(replies["second.jsonl"])
    assert "not UTF-8" in text_of(replies["binary.jsonl"])


@pytest.mark.anyio
async def test_a_huge_line_is_refused_without_being_read_whole(tmp_path, places):
    golds = places["golds"]
    (golds / "one-line.jsonl").write_bytes(b'{"id": "' + b"x" * 40_000_000)  # 40 MB and no newline
    with (golds / "huge.jsonl").open("wb") as f:
        f.truncate(400_000_000)  # sparse: 400 MB that take no disk
    service = make_service(tmp_path, places, max_goldset_bytes=10**9, max_goldset_line_bytes=1_000_000)
    capped = make_service(tmp_path / "capped", places)  # default size limit: 50 MB
    try:
        async with Client(build_server(service)) as client, Client(build_server(capped)) as other:
            tracemalloc.start()
            try:
                long = await client.call_tool("run_eval", {"domain": "math",
                                                           "goldset_path": str(golds / "one-line.jsonl")})
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            huge = await other.call_tool("run_eval", {"domain": "math", "goldset_path": str(golds / "huge.jsonl")})
    finally:
        service.close()
        capped.close()
    assert long.is_error and "longer than 1000000 bytes" in text_of(long), text_of(long)
    assert peak < 10_000_000, f"reading the refused line took {peak / 1e6:.0f} MB"
    assert huge.is_error and "400000000 bytes; the limit is 50000000" in text_of(huge), text_of(huge)
