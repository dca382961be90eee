"""`sme-mcp serve` as a process: its children (llama-server, SymPy workers) never outlive it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

SME_MCP = str(Path(sys.executable).with_name("sme-mcp"))


def children(pid: int) -> dict[int, str]:
    """Descendants of `pid` (pid -> command line), read from /proc."""
    kids: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                kids[int(entry.name)] = cmd
                frontier.append(int(entry.name))
    return kids


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def serving(proc: subprocess.Popen[bytes], port: int, timeout: float = 120) -> None:
    """Waits until `proc` accepts connections on `port` (uvicorn listens once the app has started up).

    Only a refused connection (nothing listening yet) is retried; the server exiting fails at once.
    """
    with anyio.fail_after(timeout):
        while True:
            assert proc.poll() is None, f"sme-mcp serve exited with status {proc.returncode} before listening"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except ConnectionRefusedError:
                await anyio.sleep(0.2)


async def local_lm(client: Client) -> dict:
    out = await client.call_tool("list_experts", {})
    assert not out.is_error, out.content
    return out.structured_content["local_lm"]


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_no_orphans_after_the_server_exits(model_settings, tmp_path, how):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stderr = tmp_path / "serve.stderr"
    with stderr.open("wb") as log:
        proc = subprocess.Popen(
            [SME_MCP, "serve", "--transport", "http", "--port", str(port)],
            stderr=log, env={**os.environ, "SME_DATA_DIR": str(tmp_path / "data")},
        )
    try:
        try:
            await serving(proc, port)
        except (AssertionError, TimeoutError) as exc:
            tail = stderr.read_text(errors="replace")[-3000:]
            raise AssertionError(f"{str(exc) or 'not listening in time'}; its stderr:\n{tail}") from None
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            with anyio.fail_after(300):
                while (status := await local_lm(client))["state"] != "ready":
                    assert status["state"] not in ("failed", "disabled"), status
                    await anyio.sleep(1)
            out = await client.call_tool("integrate", {"expression": "x**2"})
        assert not out.is_error and out.structured_content["result"] == "x**3/3", out.content
        kids = children(proc.pid)
        assert any("llama-server" in cmd for cmd in kids.values()), kids
        assert any("sme_mcp.tools.worker" in cmd for cmd in kids.values()), kids
        proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in kids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [cmd for pid, cmd in kids.items() if alive(pid)]
    finally:
        proc.kill()
