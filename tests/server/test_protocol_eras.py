"""Both MCP protocol eras on both transports of a real `sme-mcp serve --no-local` process.

2026-07-28 (stateless core: no `initialize`, `server/discover`, every request carries its protocol
version, client info and capabilities in `_meta`; over HTTP no `Mcp-Session-Id`) and 2025-11-25 (the
`initialize` handshake, and over HTTP a session): the SDK's client in each mode lists the tools and
calls one, over stdio, streamable HTTP and (deprecated) SSE; raw messages show what each era puts on the wire.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from test_transports import SME_MCP, free_port, read_reply, start_http

MODERN, HANDSHAKE = "2026-07-28", "2025-11-25"
# Client modes and the revision each one must end up speaking: "auto" probes server/discover first.
MODES = [("2026-07-28", MODERN), ("legacy", HANDSHAKE), ("auto", MODERN)]
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "0"}}


async def lists_and_calls(client: Client, revision: str) -> None:
    assert client.protocol_version == revision
    names = {t.name for t in (await client.list_tools()).tools}
    assert {"ask_expert", "differentiate", "run_eval"} <= names
    result = await client.call_tool("differentiate", {"expression": "x**2*exp(x)"})
    assert not result.is_error and result.structured_content["result"] == "x**2*exp(x) + 2*x*exp(x)", result


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    port = free_port()
    proc = start_http(port, "--transport", "http")
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(timeout=15)


@pytest.fixture(scope="module")
def sse_url() -> Iterator[str]:
    port = free_port()
    proc = start_http(port, "--transport", "sse")
    yield f"http://127.0.0.1:{port}/sse"
    proc.terminate()
    proc.wait(timeout=15)


@pytest.mark.anyio
@pytest.mark.parametrize(("mode", "revision"), MODES)
async def test_stdio_in_each_era(tmp_path, mode, revision):
    params = StdioServerParameters(command=SME_MCP, args=["serve", "--no-local"],
                                   env={**os.environ, "SME_DATA_DIR": str(tmp_path)})
    async with Client(params, mode=mode) as client:
        await lists_and_calls(client, revision)


@pytest.mark.anyio
@pytest.mark.parametrize(("mode", "revision"), MODES)
async def test_streamable_http_in_each_era(http_url, mode, revision):
    async with Client(http_url, mode=mode) as client:
        await lists_and_calls(client, revision)


@pytest.mark.anyio
@pytest.mark.parametrize(("mode", "revision"), MODES)
async def test_sse_in_each_era(sse_url, mode, revision):
    from mcp.client.sse import sse_client

    async with Client(sse_client(sse_url), mode=mode) as client:
        await lists_and_calls(client, revision)


def test_stdio_answers_a_modern_request_without_initialize_and_a_handshake_on_another_connection(tmp_path):
    def serve() -> subprocess.Popen[bytes]:
        return subprocess.Popen([SME_MCP, "serve", "--no-local"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env={**os.environ, "SME_DATA_DIR": str(tmp_path)})

    def send(proc: subprocess.Popen[bytes], message: dict[str, object]) -> None:
        proc.stdin.write(json.dumps(message).encode() + b"\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    modern = serve()
    try:
        send(modern, {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": ENVELOPE}})
        discover = read_reply(modern)["result"]
        assert discover["supportedVersions"] == [MODERN], discover  # type: ignore[index]
        assert {"tools", "prompts", "resources", "completions"} <= set(discover["capabilities"])  # type: ignore[index]
        send(modern, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "evaluate", "arguments": {"expression": "6*7"}, "_meta": ENVELOPE}})
        assert read_reply(modern)["result"]["structuredContent"]["result"] == "42"  # type: ignore[index]
    finally:
        modern.stdin.close()  # type: ignore[union-attr]
        modern.wait(timeout=15)

    legacy = serve()
    try:
        send(legacy, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "0"}}})
        assert read_reply(legacy)["result"]["protocolVersion"] == HANDSHAKE  # type: ignore[index]
    finally:
        legacy.stdin.close()  # type: ignore[union-attr]
        legacy.wait(timeout=15)


def test_http_modern_requests_are_stateless_and_the_handshake_opens_a_session(http_url):
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with httpx2.Client(timeout=30) as http:
        modern = {**accept, "MCP-Protocol-Version": MODERN, "Mcp-Method": "server/discover"}  # routing headers
        discover = http.post(http_url, headers=modern, json={
            "jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": ENVELOPE}})
        assert discover.status_code == 200, discover.text
        assert "mcp-session-id" not in discover.headers  # the stateless core: no session
        assert MODERN in discover.text and "supportedVersions" in discover.text
        initialize = http.post(http_url, headers=accept, json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "0"}}})
        assert initialize.status_code == 200, initialize.text
        assert initialize.headers.get("mcp-session-id")  # the 2025-11-25 era keeps a session
        assert f'"protocolVersion":"{HANDSHAKE}"' in initialize.text.replace(" ", "")
