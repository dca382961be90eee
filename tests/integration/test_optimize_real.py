"""optimize_domain end to end on the real model at a tiny budget, through the MCP tool."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from sme_mcp.config.settings import LMSpec, RoleSettings, Settings
from sme_mcp.experts.programs import ProgramStore
from sme_mcp.experts.service import ExpertService
from sme_mcp.server.app import build_server


@pytest.mark.anyio
async def test_optimize_router_with_progress_notifications_and_a_receipt(local_server, router_goldsets, tmp_path):
    settings = Settings(goldsets_dir=router_goldsets, receipts_dir=tmp_path / "receipts",
                        router=RoleSettings(chain=[LMSpec()]))
    service = ExpertService(settings, local_server)
    notes: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append(message)

    try:
        async with Client(build_server(service, local_server)) as client:
            out = await client.call_tool(
                "optimize_domain",
                {"domain": "router", "optimizer": "bootstrap", "train_limit": 2, "dev_limit": 2, "holdout_limit": 4},
                progress_callback=on_progress,
            )
            assert not out.is_error, out.content
            job = out.structured_content
            status = await client.call_tool("optimization_status", {"job_id": job["id"]})
    finally:
        service.close()
    assert job["state"] == "succeeded"
    report = job["result"]
    # The gate compares both programs on dev (2 items); the holdout (4 items) is only reported.
    assert report["gate_split"] == "dev" and report["baseline"]["n"] == report["candidate"]["n"] == 2
    assert report["holdout_baseline"]["n"] == report["holdout_candidate"]["n"] == 4
    assert report["promoted"] == (report["candidate"]["score"] > report["baseline"]["score"])
    assert report["lm_calls"] > 0
    assert status.structured_content["state"] == "succeeded"
    assert any(m and m.startswith("compile") for m in notes)
    assert any(m and m.startswith("holdout candidate") for m in notes)
    receipt = json.loads((tmp_path / "receipts" / report["receipt"]).read_text())
    assert receipt["kind"] == "optimize" and receipt["lm"]["model_file"].endswith(".gguf")
    # Items the LM stage routed name the replica that served them; the nearest-neighbour stage calls none.
    served = [i["deployment_candidate"] for i in receipt["holdout_items"]] + [
        i["deployment_baseline"] for i in receipt["holdout_items"]]
    assert all(d is None or d.startswith("local#1 http://127.0.0.1:") for d in served), served
    version = ProgramStore(settings.data_dir / "programs").get("router", report["candidate_version"])
    assert version is not None and version.status == ("promoted" if report["promoted"] else "rejected")
