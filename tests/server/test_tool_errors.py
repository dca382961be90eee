"""The one place where a tool's failure becomes the client's ToolError (server/tool_errors.py)."""

from __future__ import annotations

import inspect
import logging

import pytest
from mcp import Client
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from sme_mcp.experts.programs import ProgramError
from sme_mcp.optimize.jobs import JobNotFound
from sme_mcp.server.tool_errors import reports_errors
from sme_mcp.server.tool_inputs import Question
from sme_mcp.tools.errors import SmeError


async def lookup(ctx: Context, key: Question, strict: bool = False) -> str:
    if key == "fixable":
        raise SmeError("no entry 'fixable'; list the entries first")
    if key == "tool":
        raise ToolError("already a tool error")
    raise KeyError(key)


def test_the_wrapper_keeps_the_signature_the_sdk_reads():
    assert inspect.signature(reports_errors(lookup)) == inspect.signature(lookup)
    assert reports_errors(lookup).__annotations__ == lookup.__annotations__


@pytest.mark.anyio
async def test_over_the_protocol_an_error_a_user_can_fix_keeps_its_message_and_a_bug_says_what_to_do(caplog):
    server = MCPServer("t")
    server.tool()(reports_errors(lookup))
    async with Client(server) as client:
        schema = (await client.list_tools()).tools[0].input_schema
        assert set(schema["properties"]) == {"key", "strict"} and schema["properties"]["key"]["maxLength"] == 100_000
        fixable = await client.call_tool("lookup", {"key": "fixable"})
        tool = await client.call_tool("lookup", {"key": "tool"})
        with caplog.at_level(logging.ERROR, logger="sme_mcp.server.tool_errors"):
            bug = await client.call_tool("lookup", {"key": "other"})
    assert fixable.is_error and fixable.content[0].text.endswith("lookup: no entry 'fixable'; list the entries first")
    assert tool.is_error and tool.content[0].text.endswith("already a tool error")
    assert bug.is_error and "lookup failed unexpectedly (KeyError" in bug.content[0].text
    assert "server is still running" in bug.content[0].text
    assert "lookup failed unexpectedly" in caplog.text  # the traceback goes to the log, not to the client


def test_the_errors_the_tools_raised_by_hand_are_user_errors_now():
    missing = JobNotFound("no optimization job 'j-1'")
    assert isinstance(missing, SmeError) and isinstance(missing, KeyError)
    assert str(missing) == "no optimization job 'j-1'"  # not KeyError's quoted repr
    assert isinstance(ProgramError("math has no version 'v9'"), SmeError | ValueError)
