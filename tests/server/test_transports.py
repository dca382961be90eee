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
    proc = start_http(port, "--transport", "http", env={"SME_HTTP__TOKEN": token})  # not --token: ps shows argv
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


def read_reply(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> dict[str, object]:
    """The next line the server writes on stdout, as JSON; fails after `timeout` seconds without one."""
    import json
    import select

    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no reply within the timeout: the server dropped the line"
    return json.loads(proc.stdout.readline())  # type: ignore[union-attr]


def test_stdio_answers_malformed_lines_with_json_rpc_errors(tmp_path):
    import json

    proc = subprocess.Popen([SME_MCP, "serve", "--no-local"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={**os.environ, "SME_DATA_DIR": str(tmp_path)})
    assert proc.stdin is not None

    def send(line: str) -> None:
        proc.stdin.write(line.encode() + b"\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    try:
        cases = [
            ('{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"x": "bad \\q escape"}}', -32700, None),
            ("this is not JSON", -32700, None),
            ('[{"jsonrpc": "2.0", "id": 2, "method": "ping"}, {"jsonrpc": "2.0", "id": 3, "method": "ping"}]',
             -32600, None),
            ('{"jsonrpc": "2.0", "id": 4, "method": 12}', -32600, 4),
            ('"just a string"', -32600, None),
        ]
        for line, code, request_id in cases:
            send(line)
            reply = read_reply(proc)
            assert reply["jsonrpc"] == "2.0" and reply["id"] == request_id, reply
            assert reply["error"]["code"] == code, reply  # type: ignore[index]
            assert "bad" not in reply["error"]["message"], reply  # type: ignore[index]  # the line is not echoed
        # The session goes on as if nothing happened.
        send(json.dumps({"jsonrpc": "2.0", "id": 10, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}))
        assert read_reply(proc)["result"]["serverInfo"]["name"] == "sme-mcp"  # type: ignore[index]
        send('{"jsonrpc": "2.0", "method": "notifications/initialized"}')
        send(json.dumps({"jsonrpc": "2.0", "id": 11, "method": "tools/call",
                         "params": {"name": "evaluate", "arguments": {"expression": "6*7"}}}))
        assert read_reply(proc)["result"]["structuredContent"]["result"] == "42"  # type: ignore[index]
    finally:
        proc.stdin.close()
        proc.wait(timeout=15)


def half_requests(port: int, count: int) -> list[socket.socket]:
    """Connections that send the start of a request's head and then nothing."""
    opened = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n")
        opened.append(s)
    return opened


def closed_by_server(sockets: list[socket.socket]) -> int:
    closed = 0
    for s in sockets:
        s.settimeout(0.05)
        try:
            closed += s.recv(1) == b""
        except TimeoutError:
            pass
        except OSError:
            closed += 1
    return closed


def stop(proc: subprocess.Popen[bytes], sockets: list[socket.socket]) -> None:
    """Closes the test's sockets, then stops the server."""
    for s in sockets:
        s.close()
    proc.terminate()
    proc.wait(timeout=15)


async def answers(port: int) -> None:
    async with Client(f"http://127.0.0.1:{port}/mcp") as client:
        out = await client.call_tool("evaluate", {"expression": "6*7"})
    assert out.structured_content["result"] == "42"


@pytest.mark.anyio
async def test_http_closes_connections_that_never_send_a_whole_request(tmp_path):
    port = free_port()
    proc = start_http(port, "--transport", "http", env={"SME_DATA_DIR": str(tmp_path), "SME_HTTP__REQUEST_TIMEOUT": "2",
                                                         "SME_HTTP__MAX_CONNECTIONS": "100"})
    sockets: list[socket.socket] = []
    try:
        sockets = half_requests(port, 50)
        await answers(port)  # below the connection cap (100), a real client is served meanwhile
        sockets += half_requests(port, 100)  # past the cap: the surplus is closed at once, the rest on time-out
        time.sleep(4)
        assert closed_by_server(sockets) == len(sockets)  # every slow connection was closed by the server
        await answers(port)
    finally:
        stop(proc, sockets)


@pytest.mark.anyio
async def test_http_at_the_descriptor_limit_logs_once_and_recovers(tmp_path):
    import resource

    port = free_port()
    log = tmp_path / "stderr.log"

    def low_fd_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (80, 80))

    with log.open("wb") as err:
        proc = subprocess.Popen(
            [SME_MCP, "serve", "--no-local", "--transport", "http", "--port", str(port)], stdout=subprocess.DEVNULL,
            stderr=err, preexec_fn=low_fd_limit,
            env={**os.environ, "SME_DATA_DIR": str(tmp_path / "data"), "SME_HTTP__REQUEST_TIMEOUT": "3"})
    sockets: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, log.read_text()[-2000:]
                time.sleep(0.1)
        sockets = half_requests(port, 150)  # more connections than the server has descriptors
        time.sleep(5)
        size = log.stat().st_size
        assert size < 20_000, f"{size} bytes of log in 5 s:\n{log.read_text()[-3000:]}"
        for s in sockets:
            s.close()
        time.sleep(1)
        await answers(port)
        assert proc.poll() is None
    finally:
        stop(proc, sockets)


@pytest.mark.anyio
async def test_the_token_comes_from_a_file_or_the_environment_and_is_never_printed(tmp_path):
    token = "tok-9f8e7d6c5b4a-never-printed"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for extra, env in [(["--token-file", str(token_file)], {}), ([], {"SME_HTTP__TOKEN": token})]:
        port = free_port()
        proc = start_http(port, "--transport", "http", *extra, env=env)
        try:
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
            assert token.encode() not in cmdline  # not visible in ps
            async with httpx2.AsyncClient(timeout=10) as http:
                missing = await http.post(f"http://127.0.0.1:{port}/mcp", json=body)
            assert missing.status_code == 401
            headers = {"Authorization": f"Bearer {token}"}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30) as http,
                Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client,
            ):
                await exercise(client)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
        printed = proc.stderr.read().decode()  # type: ignore[union-attr]
        assert "bearer token required" in printed and "$SME_HTTP__TOKEN" in printed, printed
        assert token not in printed, printed


def test_token_on_the_command_line_warns_and_a_bad_token_file_is_a_clear_error(tmp_path):
    port = free_port()
    proc = start_http(port, "--transport", "http", "--token", "visible-token-123")
    proc.terminate()
    proc.wait(timeout=15)
    printed = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert "visible to every local user" in printed and "visible-token-123" not in printed
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path, why in [(tmp_path / "missing", "cannot read the token file"), (empty, "is empty")]:
        out = subprocess.run([SME_MCP, "serve", "--no-local", "--transport", "http", "--port", str(free_port()),
                              "--token-file", str(path)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and why in out.stderr, out.stderr
