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


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_no_orphans_after_the_server_exits(model_settings, tmp_path, how):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [SME_MCP, "serve", "--transport", "http", "--port", str(port)],
        stderr=subprocess.DEVNULL, env={**os.environ, "SME_DATA_DIR": str(tmp_path)},
    )
    try:
        with anyio.fail_after(300):
            while True:
                try:
                    async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                        status = (await client.call_tool("list_experts", {})).structured_content["local_lm"]
                        if status["state"] == "ready":
                            out = await client.call_tool("integrate", {"expression": "x**2"})
                            assert out.structured_content["result"] == "x**3/3"
                            break
                except Exception:
                    pass
                await anyio.sleep(1)
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
