"""Progress and cost of a real-model answer through the MCP tool, as a client sees them."""

from __future__ import annotations

import time

import pytest
from mcp import Client

from sme_mcp.experts.service import ExpertService
from sme_mcp.experts.settings import LMSpec, RoleSettings, Settings
from sme_mcp.server.app import HEARTBEAT_S, build_server

pytestmark = pytest.mark.model


def local_only(settings: Settings) -> Settings:
    for role in ("router", "math", "code", "general"):
        setattr(settings, role, RoleSettings(chain=[LMSpec()]))
    return settings


@pytest.mark.anyio
async def test_a_model_answer_sends_progress_at_once_and_then_at_least_every_few_seconds(local_server):
    service = ExpertService(local_only(Settings()), local_server)
    marks: list[tuple[float, str]] = []
    started = time.perf_counter()

    async def progress(done: float, total: float | None, message: str | None) -> None:
        marks.append((time.perf_counter() - started, message or ""))

    try:
        async with Client(build_server(service, local_server)) as client:
            out = await client.call_tool("ask_expert", {"question": "Who wrote the play Hamlet?", "domain": "general"},
                                         progress_callback=progress)
    finally:
        service.close()
    ended = time.perf_counter() - started
    assert not out.is_error, out.content
    answer = out.structured_content
    assert marks and marks[0][0] < 1.0 and marks[0][1].startswith("received")
    gaps = [b - a for a, b in zip([0.0] + [t for t, _ in marks], [t for t, _ in marks] + [ended], strict=True)]
    assert max(gaps) <= HEARTBEAT_S + 2.0, (gaps, marks)
    assert any("model call 1" in message for _, message in marks), marks
    cost = answer["cost"]
    assert cost["lm_calls"] >= 1 and cost["completion_tokens"] > 0 and cost["prompt_tokens"] > 0
    assert cost["prompt_tokens_evaluated"] + cost["prompt_tokens_cached"] == cost["prompt_tokens"]
    assert [s["stage"] for s in cost["stages"]] == ["general"]  # a named domain skips exact math and routing
