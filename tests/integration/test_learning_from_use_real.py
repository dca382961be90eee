"""Learning from use with the real model, over MCP: ask -> rate (a correction and a domain) -> the router
refit routes the question right -> optimize with the usage items -> the receipt counts them."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from sme_mcp.config.settings import LMSpec, RoleSettings, Settings
from sme_mcp.experts.service import ExpertService
from sme_mcp.server.app import build_server

pytestmark = pytest.mark.model

# The shipped router's neighbours send this to math (measured: share 0.90, decided without the LM).
MISROUTED = "What is the speed of light in km/s?"


@pytest.mark.anyio
async def test_ask_rate_refit_and_optimize_from_usage(local_server, tmp_path):
    local_only = RoleSettings(chain=[LMSpec()])
    settings = Settings(receipts_dir=tmp_path / "receipts", router=local_only, math=local_only, general=local_only)
    service = ExpertService(settings, local_server)
    try:
        async with Client(build_server(service, local_server)) as client:
            first = (await client.call_tool("ask_expert", {"question": MISROUTED})).structured_content
            assert (first["domain"], first["routed_by"]) == ("math", "nearest_neighbours")
            rated = await client.call_tool("rate_answer", {
                "id": first["id"], "verdict": "wrong", "correction": "about 299,792 km/s", "domain": "general"})
            assert not rated.is_error, rated.content
            refit = rated.structured_content["router_refit"]
            assert refit["promoted"], rated.structured_content["next_step"]
            again = (await client.call_tool("ask_expert", {"question": MISROUTED})).structured_content
            assert (again["domain"], again["routed_by"]) == ("general", "nearest_neighbours")
            assert again["id"] != first["id"]
            optimized = await client.call_tool("optimize_domain", {
                "domain": "router", "optimizer": "bootstrap", "train_limit": 2, "dev_limit": 2,
                "holdout_limit": 2, "from_usage": True})
            assert not optimized.is_error, optimized.content
            report = optimized.structured_content["result"]
            stats = json.loads((await client.read_resource("usage://stats")).contents[0].text)
    finally:
        service.close()
    assert report["train_from_usage"] == 1
    receipt = json.loads((tmp_path / "receipts" / report["receipt"]).read_text())
    from_usage = receipt["provenance"]["train_from_usage"]
    assert from_usage["usage_entries"] == [first["id"]]
    assert f"usage-{first['id']}-route" in receipt["provenance"]["chose"]["train"]
    assert first["id"] not in json.dumps(receipt["provenance"]["scored"])  # never a scored item
    assert stats["domains"]["math"]["rated_wrong"] == 1 and stats["domains"]["math"]["misroutes"] == 1
    refit_receipt = json.loads((tmp_path / "receipts" / refit["receipt"]).read_text())
    assert refit_receipt["provenance"]["learned_from_usage"] == [first["id"]]
    # The log survives a restart: a new service on the same data dir still has the entry and its rating.
    restarted = ExpertService(settings, None)
    try:
        entry = restarted.usage.get(first["id"])
        assert entry is not None and entry.rating is not None and entry.rating.domain == "general"
    finally:
        restarted.close()
