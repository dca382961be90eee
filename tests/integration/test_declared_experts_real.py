"""Declared experts end to end on the real model, through the MCP tools: the science expert declared in a file
(ask, routed by what the router learned from its train questions, eval, optimize, rollback) and the time-zone
expert whose tool comes from the reference MCP time server."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from sme_mcp.config.settings import PROJECT_DIR, Settings
from sme_mcp.experts.service import ExpertService
from sme_mcp.optimize.goldsets import load_goldset
from sme_mcp.server.app import build_server

EXAMPLES = PROJECT_DIR / "experts" / "examples"


@pytest.fixture
def service(local_server, tmp_path):
    settings = Settings(receipts_dir=tmp_path / "receipts", lm_cache=False,
                        expert_files=[EXAMPLES / "science.toml", EXAMPLES / "timezone.toml"])
    svc = ExpertService(settings, local_server)
    yield svc
    svc.close()


@pytest.mark.anyio
async def test_the_science_expert_answers_is_routed_to_evaluated_optimized_and_rolled_back(service, local_server,
                                                                                          tmp_path):
    train = load_goldset(service.registry.get("science").goldset_dir / "train.jsonl")
    async with Client(build_server(service, local_server)) as client:
        asked = await client.call_tool("ask_expert", {"question": train[0].question})  # no domain: routed
        assert not asked.is_error, asked.content
        answer = asked.structured_content
        assert answer["domain"] == "science" and answer["routed_by"] == "nearest_neighbours"
        assert answer["backend"] == "local" and answer["answer"].strip()

        evaluated = await client.call_tool("run_eval", {"domain": "science", "split": "holdout", "limit": 3})
        assert not evaluated.is_error, evaluated.content
        report = evaluated.structured_content
        assert report["n"] == 3 and report["threshold"] == 0.28
        receipt = json.loads((tmp_path / "receipts" / report["receipt"]).read_text())
        assert receipt["report"]["goldset"] == "science" and receipt["split_sizes"] == {
            "train": 80, "dev": 60, "holdout": 120}
        assert receipt["expert_settings"]["declaration"] == str(EXAMPLES / "science.toml")

        optimized = await client.call_tool("optimize_domain", {
            "domain": "science", "optimizer": "bootstrap", "train_limit": 3, "dev_limit": 2, "holdout_limit": 2})
        assert not optimized.is_error, optimized.content
        job = optimized.structured_content
        assert job["state"] == "succeeded", job
        result = job["result"]
        assert result["baseline"]["n"] == 2 and result["holdout_candidate"]["n"] == 2
        assert (tmp_path / "receipts" / result["receipt"]).is_file()

        rolled = await client.call_tool("rollback_program", {"domain": "science", "version": "base"})
        assert not rolled.is_error, rolled.content
        science = next(e for e in rolled.structured_content["experts"] if e["name"] == "science")
        assert science["program_version"] is None


@pytest.mark.anyio
async def test_the_timezone_expert_answers_with_the_reference_time_server_s_tool(service, local_server):
    async with Client(build_server(service, local_server)) as client:
        asked = await client.call_tool("ask_expert", {"question": "It's 09:30 in Asia/Tokyo. What time is it in "
                                                                  "Africa/Nairobi?", "domain": "timezone"})
    assert not asked.is_error, asked.content
    answer = asked.structured_content
    assert answer["domain"] == "timezone" and "convert_time" in answer["tools_used"], answer
    assert "03:30" in answer["answer"] or "3:30" in answer["answer"], answer
