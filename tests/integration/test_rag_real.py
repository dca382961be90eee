"""Ingest -> query -> answer with sources: real embedding model, real LanceDB, real local LM, via MCP."""

from __future__ import annotations

import pytest
from mcp import Client

from sme_mcp.config.settings import ClientFilesSettings, LMSpec, RoleSettings, Settings
from sme_mcp.experts.service import ExpertService
from sme_mcp.server.app import build_server

FACT = (
    "# The Quillmere lantern fair\n\n"
    "The Quillmere lantern fair is held every year on the island of Tarrowby. It was founded in 1873 by "
    "the glassblower Edda Vantross, and its largest lantern is called the Heron.\n"
)
OTHER = "# Tide tables\n\nTarrowby harbour has two high tides a day; the ferry leaves at noon.\n"


@pytest.mark.anyio
async def test_ingest_then_answer_with_sources(local_server, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lantern-fair.md").write_text(FACT)
    (docs / "tides.md").write_text(OTHER)
    (docs / "broken.txt").write_bytes(b"\xff\xfe\x00bad \x80 bytes")
    settings = Settings(data_dir=tmp_path / "data", general=RoleSettings(chain=[LMSpec()]),
                        client_files=ClientFilesSettings(ingest_roots=[docs]))  # the folder clients may ingest
    service = ExpertService(settings, local_server)
    try:
        async with Client(build_server(service, local_server)) as client:
            first = await client.call_tool("ingest_documents", {"collection": "general", "paths": [str(docs)]})
            again = await client.call_tool("ingest_documents", {"collection": "general", "paths": [str(docs)]})
            listing = await client.call_tool("list_collections", {})
            answer = await client.call_tool(
                "ask_expert", {"question": "Who founded the Quillmere lantern fair?", "domain": "general"}
            )
    finally:
        service.close()
    report = first.structured_content
    assert not first.is_error, first.content
    assert sorted(p.rsplit("/", 1)[1] for p in report["added"]) == ["lantern-fair.md", "tides.md"]
    assert [s["path"].rsplit("/", 1)[1] for s in report["skipped"]] == ["broken.txt"]
    assert sorted(p.rsplit("/", 1)[1] for p in again.structured_content["unchanged"]) == ["lantern-fair.md", "tides.md"]
    assert again.structured_content["chunks_written"] == 0
    collections = {c["name"]: c for c in listing.structured_content["collections"]}
    assert collections["general"]["documents"] == 2
    assert not answer.is_error, answer.content
    result = answer.structured_content
    assert "vantross" in result["answer"].lower()
    assert any("lantern-fair.md" in s.get("source", "") for s in result["sources"]), result["sources"]
    # The tide table is retrieved too (two files, k=3) but is off-topic: below the cosine floor, it is not shown.
    assert not any("tides.md" in s.get("source", "") for s in result["sources"]), result["sources"]
