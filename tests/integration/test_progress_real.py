"""Progress and cost of a real-model answer through the MCP tool, as a client sees them."""

from __future__ import annotations

import time

import pytest
from mcp import Client

from sme_mcp.config.settings import LMSpec, RoleSettings, Settings
from sme_mcp.experts.service import ExpertService
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


@pytest.mark.anyio
async def test_the_answers_tokens_stream_as_progress_and_a_cancel_stops_the_generation(local_server):
    import anyio

    service = ExpertService(local_only(Settings(lm_cache=False)), local_server)
    marks: list[str] = []
    question = "Explain in detail, in at least ten sentences, how a hash table handles collisions."

    async def progress(done: float, total: float | None, message: str | None) -> None:
        marks.append(message or "")

    try:
        async with Client(build_server(service, local_server)) as client:
            out = await client.call_tool("ask_expert", {"question": "Who wrote the play Hamlet?", "domain": "general"},
                                         progress_callback=progress)
            assert not out.is_error, out.content
            streamed = [m for m in marks if " tokens … " in m]
            assert streamed, marks  # the model's text arrives as it is written
            assert out.structured_content["cost"]["prompt_tokens_cached"] >= 0
            # A long answer, cancelled once its tokens start arriving: the server must stop generating.
            marks.clear()
            with anyio.move_on_after(120) as scope:
                async with anyio.create_task_group() as group:
                    async def ask() -> None:
                        await client.call_tool("ask_expert", {"question": question, "domain": "general"},
                                               progress_callback=progress)

                    group.start_soon(ask)
                    while not any(" tokens … " in m for m in marks):
                        await anyio.sleep(0.2)
                    group.cancel_scope.cancel()
            assert not scope.cancelled_caught, "no tokens streamed within 120 s"
    finally:
        service.close()
    # llama-server reports a slot that stopped early; an idle slot list shows the generation ended.
    import httpx

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        slots = httpx.get(local_server.base_url().removesuffix("/v1") + "/slots", timeout=5).json()
        if not any(slot.get("is_processing") for slot in slots):
            break
        time.sleep(0.5)
    assert not any(slot.get("is_processing") for slot in slots), slots
