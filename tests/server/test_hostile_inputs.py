"""Runs the hostile-input corpus (tests/data/hostile_inputs.jsonl) through the real MCP protocol.

Each line is one case: ``{"id", "tool", "args", "expect", "category", "note"}`` plus, for some
``expect: ok`` cases, the exact ``result`` string, and for some ``expect: error`` cases a ``message``
the error must contain. ``tool: "*"`` means every text-parsing tool, with ``args.text`` put into that
tool's text argument. In args, the string ``CANARY`` becomes the path of a file that must never be
created, ``{"$concat": [part, ...]}`` (a part is a string or ``[string, count]``) builds long strings,
and ``{"$list": [item, count]}`` builds long lists, so the corpus file stays small.

``file_access`` cases call ``ingest_documents`` and ``run_eval`` with paths: ``$ALLOWED`` (the folder
clients may ingest from), ``$GOLDS`` (the folder gold sets may be read from) and ``$OUTSIDE`` (a mode
700 folder beside them holding mode 600 secrets) become real folders set up by the `places` fixture.
No reply may contain any secret's text, and a path outside the allowed folders reads the same whether
or not it exists.

All cases share one server and one worker pool (short timeout), so the last test checks that the
server still answers correctly after the whole corpus.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from sme_mcp.config.settings import ClientFilesSettings, Settings
from sme_mcp.experts.service import ExpertService
from sme_mcp.server.app import build_server
from sme_mcp.tools.worker import SympyWorkerPool

CORPUS = Path(__file__).parents[1] / "data" / "hostile_inputs.jsonl"
WORKER_TIMEOUT = 3.0
# Generous: the time limit covers only the computation; starting a replacement worker comes on top.
CALL_BOUND = WORKER_TIMEOUT + 10.0
GOLDSET_BYTES = 10_000_000  # the corpus server's gold-set size limit (huge.jsonl is one byte over)
TEXT_FIELD = {
    "evaluate": "expression", "simplify": "expression", "expand": "expression", "factor": "expression",
    "solve": "equations", "differentiate": "expression", "integrate": "expression", "limit": "expression",
    "series": "expression", "summation": "expression", "matrix_determinant": "matrix",
    "matrix_inverse": "matrix", "matrix_eigenvalues": "matrix",
}
FILE_TOOLS = {"ingest_documents", "run_eval"}
CATEGORIES = {"code_execution", "resource_bomb", "malformed", "wrong_type", "valid", "file_access"}
SECRETS = ["SECRET-CANARY-7731", "sk-live-ABCD1234WXYZ", "SECRET-QUESTION-1234", "739217"]
DURATIONS: list[tuple[float, str, str]] = []


def load_cases() -> list[dict[str, Any]]:
    # split("\n"), not splitlines(): the latter also splits at characters like U+2028 or \x1c.
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").split("\n") if line.strip()]


CASES = load_cases()


def expand(value: Any, canary: Path, places: dict[str, Path] | None = None) -> Any:
    """Replaces CANARY and the $ALLOWED/$GOLDS/$OUTSIDE folders and builds the $concat / $list shorthands."""
    if isinstance(value, str):
        for name, path in (places or {}).items():
            value = value.replace(f"${name}", str(path))
        return value.replace("CANARY", str(canary))
    if isinstance(value, list):
        return [expand(v, canary, places) for v in value]
    if isinstance(value, dict) and "$concat" in value:
        parts = [p if isinstance(p, str) else p[0] * p[1] for p in value["$concat"]]
        return expand("".join(parts), canary, places)
    if isinstance(value, dict) and "$list" in value:
        item, count = value["$list"]
        return [expand(item, canary, places)] * count
    if isinstance(value, dict):
        return {k: expand(v, canary, places) for k, v in value.items()}
    return value


def calls(case: dict[str, Any], canary: Path,
          places: dict[str, Path] | None = None) -> list[tuple[str, dict[str, Any]]]:
    args = expand(case["args"], canary, places)
    if case["tool"] != "*":
        return [(case["tool"], args)]
    text = args["text"]
    return [(tool, {field: [text] if field == "equations" else text}) for tool, field in TEXT_FIELD.items()]


def assert_clear_error(tool: str, text: str, case: dict[str, Any]) -> None:
    """The reply must explain the problem: not empty, not a traceback, not the bare wrapper text."""
    label = f"{case['id']} ({case['note']}) via {tool}"
    assert text.strip(), f"{label}: empty error message"
    assert "Traceback (most recent call last)" not in text, f"{label}: traceback leaked: {text[:500]}"
    assert 'File "' not in text, f"{label}: stack frame leaked: {text[:500]}"
    # The bare "Error executing tool X" is what MCP says for an unexpected (non-ToolError) exception.
    detail = text.removeprefix(f"Error executing tool {tool}").lstrip(": ").strip()
    assert len(detail) >= 10, f"{label}: no explanation in {text!r}"
    assert len(text) < 5000, f"{label}: error message is {len(text)} characters long"


def test_corpus_is_well_formed() -> None:
    ids = [c["id"] for c in CASES]
    assert len(CASES) >= 200
    assert len(ids) == len(set(ids)), "duplicate ids"
    for case in CASES:
        assert set(case) >= {"id", "tool", "args", "expect", "category", "note"}, case
        assert case["expect"] in ("ok", "error"), case
        assert case["category"] in CATEGORIES, case
        assert case["tool"] == "*" or case["tool"] in TEXT_FIELD or case["tool"] in FILE_TOOLS, case
        assert case["tool"] != "*" or (case["expect"] == "error" and "text" in case["args"]), case
        assert (case["tool"] in FILE_TOOLS) == (case["category"] == "file_access"), case
        assert "message" not in case or case["expect"] == "error", case
    assert any("CANARY" in json.dumps(c["args"]) for c in CASES)
    assert sum(c["category"] == "file_access" for c in CASES) >= 30


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("canary") / "CANARY_created"


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The allowed ingest folder, the allowed gold-set folder and a private folder of secrets beside them."""
    root = tmp_path_factory.mktemp("files")
    outside, allowed, golds = root / "outside", root / "allowed", root / "golds"
    for folder in (outside, allowed / "sub", golds):
        folder.mkdir(parents=True)
    (outside / "secret.txt").write_text(f"{SECRETS[0]} api_key={SECRETS[1]}\n")
    (outside / "secret.jsonl").write_text(json.dumps(SECRETS[1]) + "\n")
    for secret in outside.iterdir():
        secret.chmod(0o600)
    outside.chmod(0o700)
    (allowed / "doc.md").write_text("# Notes\n\nNothing secret here.\n")
    (allowed / "link-out.md").symlink_to(outside / "secret.txt")
    (allowed / "linked-dir").symlink_to(outside, target_is_directory=True)
    (golds / "link-out.jsonl").symlink_to(outside / "secret.jsonl")
    (golds / "key.jsonl").write_text(json.dumps(SECRETS[1]) + "\n")
    (golds / "number.jsonl").write_text(SECRETS[3] + "\n")
    (golds / "fields.jsonl").write_text(json.dumps({"id": "a", "domain": "math", "question": [SECRETS[2]]}) + "\n")
    (golds / "binary.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe" * 50)
    (golds / "deep.jsonl").write_text("[" * 100_000 + "\n")
    (golds / "long.jsonl").write_bytes(b'{"id": "' + b"x" * 3_000_000)  # no newline
    with (golds / "huge.jsonl").open("wb") as f:
        f.truncate(GOLDSET_BYTES + 1)  # sparse: costs no disk
    os.mkfifo(golds / "fifo.jsonl")
    (golds / "folder.jsonl").mkdir()
    return {"ALLOWED": allowed, "GOLDS": golds, "OUTSIDE": outside}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, places: dict[str, Path]) -> Iterator[ExpertService]:
    """One service and pool for the whole corpus, so damage from one case would show in the next."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SME_DATA_DIR", str(tmp_path_factory.mktemp("sme-data")))
        settings = Settings()
        settings.client_files = ClientFilesSettings(ingest_roots=[places["ALLOWED"]], goldset_roots=[places["GOLDS"]],
                                                    max_goldset_bytes=GOLDSET_BYTES)
        svc = ExpertService(settings, None, pool=SympyWorkerPool(size=2, timeout=WORKER_TIMEOUT))
        yield svc
        svc.close()


def system_secrets() -> list[str]:
    """Contents of small system files the corpus names, which no reply may contain."""
    found = []
    for path in ("/proc/sys/kernel/pid_max",):
        with contextlib.suppress(OSError):
            found.append(Path(path).read_text().strip())
    return [s for s in found if len(s) >= 4]


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
async def test_hostile_case(case: dict[str, Any], service: ExpertService, canary: Path,
                            places: dict[str, Path]) -> None:
    replies = []
    async with Client(build_server(service)) as client:
        for tool, args in calls(case, canary, places):
            start = time.monotonic()
            # A hard stop well past the bound, so a hang fails this case instead of the whole run.
            with anyio.fail_after(CALL_BOUND * 2):
                result = await client.call_tool(tool, args)
            replies.append((tool, result, time.monotonic() - start, canary.exists()))
    # Asserted outside the client's task group, so a failure reads as itself, not as an ExceptionGroup.
    for tool, result, elapsed, canary_made in replies:
        DURATIONS.append((elapsed, case["id"], tool))
        label = f"{case['id']} ({case['note']}) via {tool}"
        text = result.content[0].text if result.content else ""
        assert not canary_made, f"{label} created the canary file"
        assert elapsed < CALL_BOUND, f"{label} took {elapsed:.1f} s"
        for secret in [*SECRETS, *system_secrets()]:
            assert secret not in text, f"{label} showed file content: {text[:500]}"
        if case["expect"] == "error":
            assert result.is_error, f"{label} succeeded: {text[:300]}"
            assert_clear_error(tool, text, case)
            if "message" in case:
                assert case["message"] in text, f"{label}: expected {case['message']!r} in {text[:500]!r}"
            if case["category"] == "file_access" and case.get("message") == "outside the folders":
                for hint in ("No such file", "Errno", "Permission denied", "does not exist"):
                    assert hint not in text, f"{label}: the refusal tells whether the path exists: {text[:500]}"
        else:
            assert not result.is_error, f"{label} failed: {text[:500]}"
            assert result.structured_content is not None
            if "result" in case:
                assert result.structured_content["result"] == case["result"], label


@pytest.mark.anyio
async def test_server_still_answers_after_the_corpus(service: ExpertService, canary: Path,
                                                     places: dict[str, Path]) -> None:
    # Runs after the corpus (file order) on the same server and pool.
    good = places["GOLDS"] / "good.jsonl"
    good.write_text(json.dumps({"id": "g1", "domain": "math", "question": "What is 6 * 7?", "answer": "42"}) + "\n")
    async with Client(build_server(service)) as client:
        result = await client.call_tool("evaluate", {"expression": "1/2+1/3"})
        solved = await client.call_tool("solve", {"equations": ["x**2 = 9"]})
        scored = await client.call_tool("run_eval", {"domain": "math", "goldset_path": str(good),
                                                     "write_receipt": False})
        listed = await client.call_tool("list_collections", {})
    assert not result.is_error and result.structured_content["result"] == "5/6"
    assert not solved.is_error and solved.structured_content["result"] == "x = -3; x = 3"
    assert not scored.is_error and scored.structured_content["correct"] == 1, scored.content  # an allowed gold set
    assert not listed.is_error, listed.content
    assert not canary.exists()
    assert len(service.pool.worker_pids()) <= service.pool.size
    slowest = sorted(DURATIONS, reverse=True)[:5]
    total = sum(d for d, _, _ in DURATIONS)
    print(f"\nhostile corpus: {len(DURATIONS)} calls in {total:.1f} s; slowest: "
          + ", ".join(f"{case}/{tool} {d:.1f} s" for d, case, tool in slowest))
