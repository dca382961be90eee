"""Concurrent calls over streamable HTTP: all answered, none lost or mixed up (no LM: SymPy and fast path)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

SME_MCP = str(Path(sys.executable).with_name("sme-mcp"))


@pytest.fixture
def http_url(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"SME_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([SME_MCP, "serve", "--no-local", "--transport", "http", "--port", str(port)],
                            stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(timeout=15)


@pytest.mark.anyio
async def test_200_concurrent_sympy_calls_and_16_concurrent_asks(http_url):
    results: dict[str, str] = {}
    errors: list[str] = []

    async with Client(http_url) as client:

        async def sympy_call(i: int) -> None:
            out = await client.call_tool("evaluate", {"expression": f"{i}**3 + {i}/7"})
            if out.is_error:
                errors.append(out.content[0].text)
            else:
                results[f"s{i}"] = out.structured_content["result"]

        async def ask(i: int) -> None:
            out = await client.call_tool("ask_expert", {"question": f"What is {i} * 1000 + {i}?"})
            if out.is_error:
                errors.append(out.content[0].text)
            else:
                results[f"a{i}"] = out.structured_content["answer"]

        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(sympy_call, i)
            for i in range(16):
                tg.start_soon(ask, i)

    assert errors == []
    assert len(results) == 216
    from fractions import Fraction

    for i in range(200):
        assert Fraction(results[f"s{i}"]) == Fraction(i**3) + Fraction(i, 7), i
    for i in range(16):
        assert results[f"a{i}"] == str(i * 1001)
