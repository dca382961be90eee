"""Tools from another MCP server: the official reference time server (`mcp-server-time`), started over stdio."""

from __future__ import annotations

import sys

import pytest

from sme_mcp.experts.mcp_tools import MCPToolError, MCPToolServer

TIME_SERVER = [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]


@pytest.fixture
def time_server():
    server = MCPToolServer("timezone", "time", command=TIME_SERVER, allowed_tools=["convert_time"], timeout=60)
    yield server
    server.close()


def test_the_reference_time_server_s_tool_converts_a_time(time_server):
    tools = time_server.dspy_tools()
    assert [t.name for t in tools] == ["convert_time"]  # get_current_time exists but is not allowed
    assert set(tools[0].args) == {"source_timezone", "time", "target_timezone"}
    result = tools[0](source_timezone="Asia/Tokyo", time="09:30", target_timezone="Africa/Nairobi")
    assert '"datetime": "' in result and "T03:30:00+03:00" in result, result


def test_a_tool_error_comes_back_as_an_observation_the_model_can_correct(time_server):
    result = time_server.call("convert_time", {"source_timezone": "Mars/Olympus", "time": "09:30",
                                               "target_timezone": "Asia/Tokyo"})
    assert result.startswith("Error: ") and "Mars/Olympus" in result


def test_a_tool_the_declaration_does_not_allow_is_refused(time_server):
    with pytest.raises(MCPToolError, match="does not allow"):
        time_server.call("get_current_time", {"timezone": "UTC"})


def test_a_tool_the_server_lacks_is_a_clear_error_for_that_expert():
    server = MCPToolServer("timezone", "time", command=TIME_SERVER, allowed_tools=["convert_time", "teleport"],
                           timeout=60)
    with pytest.raises(MCPToolError, match="has no tool 'teleport'; it has convert_time, get_current_time"):
        server.mcp_tools()
    server.close()


def test_a_server_that_cannot_start_is_a_clear_error_naming_the_expert():
    server = MCPToolServer("timezone", "time", command=["/nonexistent/mcp-server"], allowed_tools=["convert_time"],
                           timeout=20)
    with pytest.raises(MCPToolError, match="the timezone expert's MCP tool server 'time' .*could not be started"):
        server.mcp_tools()
    server.close()
