"""A real `sme-mcp serve` subprocess over stdio, streamable HTTP and SSE (no LM: --no-local)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

SME_MCP = str(Path(sys.executable).with_name("sme-mcp"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_http(port: int, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [SME_MCP, "serve", "--no-local", "--port", str(port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not listen within 30 s")


@pytest.fixture
def http_server() -> Iterator[tuple[int, str]]:
    port, token = free_port(), "s3cret-token"
    proc = start_http(port, "--transport", "http", "--token", token)
    yield port, token
    proc.terminate()
    assert proc.wait(timeout=15) is not None


async def exercise(client: Client) -> None:
    """tools/list, a SymPy call and an error call: the same checks on every transport."""
    names = {t.name for t in (await client.list_tools()).tools}
    assert {"ask_expert", "list_experts", "integrate", "solve"} <= names
    ok = await client.call_tool("integrate", {"expression": "x**2", "lower": "0", "upper": "3"})
    assert not ok.is_error and ok.structured_content["result"] == "9"
    bad = await client.call_tool("evaluate", {"expression": "().__class__"})
    assert bad.is_error and "not allowed" in bad.content[0].text


@pytest.mark.anyio
async def test_stdio_transport(tmp_path):
    params = StdioServerParameters(
        command=SME_MCP, args=["serve", "--no-local"], env={**os.environ, "SME_DATA_DIR": str(tmp_path)}
    )
    async with Client(params) as client:
        await exercise(client)


@pytest.mark.anyio
async def test_streamable_http_with_bearer_token(http_server):
    port, token = http_server
    headers = {"Authorization": f"Bearer {token}"}
    url = f"http://127.0.0.1:{port}/mcp"
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        await exercise(client)


@pytest.mark.anyio
async def test_http_rejects_missing_or_wrong_token(http_server):
    port, _ = http_server
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with httpx2.AsyncClient(timeout=10) as http:
        missing = await http.post(f"http://127.0.0.1:{port}/mcp", json=body)
        wrong = await http.post(f"http://127.0.0.1:{port}/mcp", json=body, headers={"Authorization": "Bearer nope"})
    assert missing.status_code == 401 and wrong.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.anyio
async def test_http_rejects_foreign_host_header(http_server):
    port, token = http_server
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    headers = {"Authorization": f"Bearer {token}", "Host": "evil.example.com",
               "Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(timeout=10) as http:
        resp = await http.post(f"http://127.0.0.1:{port}/mcp", json=body, headers=headers)
    assert resp.status_code in (400, 403, 421)


def test_http_binds_loopback_by_default():
    port = free_port()
    proc = start_http(port, "--transport", "http")
    try:
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
        if out.returncode != 0:
            pytest.skip("ss is not available")
        assert f"127.0.0.1:{port}" in out.stdout
        assert f"0.0.0.0:{port}" not in out.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.mark.anyio
async def test_sse_transport():
    port = free_port()
    proc = start_http(port, "--transport", "sse")
    try:
        async with Client(sse_client(f"http://127.0.0.1:{port}/sse")) as client:
            await exercise(client)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
