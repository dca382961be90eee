"""Prompts, the program:// resource and argument completion, through the SDK's in-memory client in both eras."""

from __future__ import annotations

import json

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import PromptReference, ResourceTemplateReference

from sme_mcp.server.app import build_server

PROMPTS = {"ask_step_by_step", "review_code", "evaluate_then_optimize", "try_program_version", "index_documents"}
# "auto" in-process dispatches the 2026-07-28 per-request path; "legacy" runs the 2025-11-25 initialize handshake.
MODES = ["auto", "legacy"]


@pytest.fixture
def service(no_backend_service):
    return no_backend_service


def text_of(result) -> str:
    assert len(result.messages) == 1 and result.messages[0].role == "user"
    return result.messages[0].content.text


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_prompts_are_listed_with_their_arguments_and_render_the_tool_calls(service, mode):
    async with Client(build_server(service), mode=mode) as client:
        listed = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(listed) >= PROMPTS
        args = {a.name: a.required for a in listed["evaluate_then_optimize"].arguments}
        assert args == {"goldset": True, "optimizer": False, "budget": False}
        assert listed["ask_step_by_step"].title == "Ask an expert, step by step"

        text = text_of(await client.get_prompt("ask_step_by_step", {"question": "d/dx of x**3?", "domain": "math"}))
        assert 'ask_expert with {"question": "d/dx of x**3?", "domain": "math"}' in text and "differentiate" in text
        routed = text_of(await client.get_prompt("ask_step_by_step", {"question": "hi"}))
        assert 'ask_expert with {"question": "hi"}.' in routed  # no domain: the router chooses

        review = text_of(await client.get_prompt("review_code", {"code": "def f(x): return 1/x", "focus": "zero"}))
        assert '"domain": "code"' in review and "def f(x): return 1/x" in review and "verification" in review

        plan = text_of(await client.get_prompt("evaluate_then_optimize", {"goldset": "router", "optimizer": "mipro"}))
        assert '"domain": "router", "optimizer": "mipro", "budget": "light"' in plan
        assert plan.index("run_eval") < plan.index("optimize_domain") < plan.index("rollback_program")


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "arguments", "fragment"), [
    ("ask_step_by_step", {"question": "q", "domain": "poetry"}, "domain must be one of math, code, general"),
    ("evaluate_then_optimize", {"goldset": "nope"}, "goldset must be one of code, general, math, router"),
    ("evaluate_then_optimize", {"goldset": "math", "budget": "huge"}, "budget must be one of light, medium, heavy"),
    ("try_program_version", {"domain": "math", "version": "v99"}, "version must be one of base, v1"),
    ("index_documents", {"paths": "  \n "}, "paths must name at least one file or folder"),
])
async def test_a_bad_prompt_argument_is_an_error_that_names_the_valid_values(service, name, arguments, fragment):
    async with Client(build_server(service)) as client:
        with pytest.raises(MCPError, match=fragment):
            await client.get_prompt(name, arguments)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_prompt_arguments_complete(service, mode):
    async with Client(build_server(service), mode=mode) as client:
        capabilities = client.server_capabilities
        assert capabilities is not None and capabilities.completions is not None

        async def values(prompt: str, argument: str, value: str = "", given: dict[str, str] | None = None):
            out = await client.complete(PromptReference(type="ref/prompt", name=prompt),
                                        {"name": argument, "value": value}, given)
            return out.completion.values

        assert await values("ask_step_by_step", "domain") == ["math", "code", "general"]
        assert await values("try_program_version", "domain", "r") == ["router"]
        assert await values("evaluate_then_optimize", "goldset") == ["code", "general", "math", "router"]
        assert await values("evaluate_then_optimize", "optimizer", "bo") == ["bootstrap", "bootstrap_rs"]
        # Versions of the domain already chosen: the shipped math program has v1 (seeded into the data dir).
        assert await values("try_program_version", "version", "", {"domain": "math"}) == ["base", "v1"]
        assert await values("try_program_version", "version", "v", {"domain": "code"}) == []  # code has none
        assert "general" in await values("index_documents", "collection", "gen")
        assert await values("ask_step_by_step", "question") == []  # free text: nothing to offer


@pytest.mark.anyio
async def test_resource_template_arguments_complete_and_program_versions_read(service):
    async with Client(build_server(service)) as client:
        async def values(uri: str, argument: str, value: str, given: dict[str, str] | None = None):
            ref = ResourceTemplateReference(type="ref/resource", uri=uri)
            return (await client.complete(ref, {"name": argument, "value": value}, given)).completion.values

        receipts = await values("receipt://{name}", "name", "optimize-math-")
        assert receipts and all(r.startswith("optimize-math-") for r in receipts)
        assert await values("program://{name}/{version}", "name", "m") == ["math"]
        assert await values("program://{name}/{version}", "version", "", {"name": "router"}) == ["base", "v1"]

        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert "program://{name}/{version}" in templates
        program = json.loads((await client.read_resource("program://math/v1")).contents[0].text)
        assert program["version"] == "v1" and program["active"] is True and program["status"] == "promoted"
        base = json.loads((await client.read_resource("program://math/base")).contents[0].text)
        assert base["active"] is False
        with pytest.raises(MCPError, match="math has no version 'v7'"):
            await client.read_resource("program://math/v7")
