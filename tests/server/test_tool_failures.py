"""Failures inside tools and resources reach the client named, with what to do, never as a bare
"Error executing tool X" / "Error reading resource X"; and the server keeps serving after each."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from sme_mcp.config.settings import ClientFilesSettings, Settings
from sme_mcp.experts.service import ExpertService
from sme_mcp.server.app import build_server


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ExpertService]:
    settings = Settings(data_dir=tmp_path / "data", receipts_dir=tmp_path / "receipts")
    settings.client_files = ClientFilesSettings(ingest_roots=[tmp_path / "docs"], goldset_roots=[tmp_path])
    svc = ExpertService(settings, None)
    yield svc
    svc.close()


def detail(tool: str, result: Any) -> str:
    """The error text without the SDK's prefix; what is left must say something."""
    assert result.is_error
    text = result.content[0].text
    rest = text.removeprefix(f"Error executing tool {tool}").lstrip(": ").strip()
    assert len(rest) > 20, f"bare error from {tool}: {text!r}"
    assert "Traceback" not in text
    return rest


async def still_serving(client: Client) -> None:
    out = await client.call_tool("evaluate", {"expression": "6*7"})
    assert out.structured_content["result"] == "42"


@pytest.mark.anyio
async def test_a_broken_document_index_is_named_by_list_collections_and_its_resource(service, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "documents").write_text("not a LanceDB folder")  # the index root is a file
    async with Client(build_server(service)) as client:
        listed = await client.call_tool("list_collections", {})
        with pytest.raises(MCPError) as resource:
            await client.read_resource("collection://index")
        await still_serving(client)
    assert "document index" in detail("list_collections", listed) and "SME_DATA_DIR" in detail("list_collections",
                                                                                                 listed)
    assert "document index" in str(resource.value) and "SME_DATA_DIR" in str(resource.value)


@pytest.mark.anyio
async def test_an_unexpected_ingest_failure_says_what_failed_and_what_to_do(service, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\ntext\n")

    class Broken:
        def ingest(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("lance: manifest is corrupt")

    service._documents = Broken()
    async with Client(build_server(service)) as client:
        out = await client.call_tool("ingest_documents", {"paths": [str(tmp_path / "docs")]})
        await still_serving(client)
    text = detail("ingest_documents", out)
    assert "ingest_documents failed unexpectedly (RuntimeError)" in text and "Try again" in text


@pytest.mark.anyio
async def test_rollback_that_cannot_write_its_pointer_is_a_named_error(service, tmp_path):
    pointer = tmp_path / "data" / "programs" / "router" / "active.json"
    pointer.mkdir(parents=True)  # the pointer file cannot be replaced: it is a folder
    async with Client(build_server(service)) as client:
        out = await client.call_tool("rollback_program", {"domain": "router", "version": "base"})
        await still_serving(client)
    text = detail("rollback_program", out)
    assert "cannot make base the active router program" in text and "SME_DATA_DIR" in text


@pytest.mark.anyio
async def test_a_damaged_receipt_is_named_not_bare(service, tmp_path):
    receipts = tmp_path / "receipts"
    receipts.mkdir()
    (receipts / "eval-math-holdout-20260101T000000Z.json").write_text('{"kind": "eval", "report": ')
    async with Client(build_server(service)) as client:
        with pytest.raises(MCPError) as damaged:
            await client.read_resource("receipt://eval-math-holdout-20260101T000000Z.json")
        await still_serving(client)
    assert "cannot be read" in str(damaged.value) and "restore it from git or delete it" in str(damaged.value)


@pytest.mark.anyio
async def test_run_eval_that_cannot_write_its_receipt_says_so(service, tmp_path):
    service.settings.receipts_dir = tmp_path / "receipts-file"
    service.settings.receipts_dir.write_text("a file where the receipts folder should be")
    goldset = tmp_path / "arith.jsonl"
    goldset.write_text(json.dumps({"id": "a", "domain": "math", "question": "What is 2 + 2?", "answer": "4"}) + "\n")
    async with Client(build_server(service)) as client:
        out = await client.call_tool("run_eval", {"domain": "math", "goldset_path": str(goldset)})
        unwritten = await client.call_tool("run_eval", {"domain": "math", "goldset_path": str(goldset),
                                                        "write_receipt": False})
    text = detail("run_eval", out)
    assert "receipts dir" in text and "write_receipt=false" in text
    assert not unwritten.is_error and unwritten.structured_content["correct"] == 1


@pytest.mark.anyio
async def test_list_experts_skips_a_receipt_that_is_not_text(service, tmp_path):
    receipts = tmp_path / "receipts"
    receipts.mkdir()
    (receipts / "eval-router-holdout-20260101T000000Z.json").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    (receipts / "eval-math-holdout-20260101T000000Z.json").write_text("[1, 2, 3]")  # JSON, not an object
    async with Client(build_server(service)) as client:
        out = await client.call_tool("list_experts", {})
    assert not out.is_error, out.content
    assert {e["name"] for e in out.structured_content["experts"]} == {"router", "math", "code", "general"}
