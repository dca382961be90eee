"""SymPy calls waiting for a worker never hold the threads every other tool and resource runs on."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest
from mcp import Client

from sme_mcp.config.settings import Settings
from sme_mcp.experts.service import ExpertService
from sme_mcp.server.app import build_server


class StuckPool:
    """A one-worker pool whose computations all hang until released (a slow input, many times over)."""

    size = 1

    def __init__(self) -> None:
        self.release = threading.Event()
        self.inside = 0
        self.lock = threading.Lock()

    def run(self, op: str, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        with self.lock:
            self.inside += 1
        self.release.wait(60)
        return {"result": "1", "latex": "1", "numeric": None}

    def close(self) -> None:
        self.release.set()

    def worker_pids(self) -> list[int]:
        return []


class NoDocuments:
    def collections(self) -> list[Any]:
        return []


@pytest.mark.anyio
async def test_queued_sympy_calls_leave_threads_for_other_tools(tmp_path):
    pool = StuckPool()
    service = ExpertService(Settings(data_dir=tmp_path / "data", receipts_dir=tmp_path / "receipts"), None,
                            pool=pool)  # type: ignore[arg-type]
    service._documents = NoDocuments()  # type: ignore[assignment]
    answered: list[float] = []
    try:
        async with Client(build_server(service)) as client, anyio.create_task_group() as tg:
            for i in range(45):  # more than anyio's 40 shared worker threads
                tg.start_soon(client.call_tool, "evaluate", {"expression": f"{i} + 1"})
            await anyio.sleep(1.0)  # all 45 are in: waiting for the one worker
            start = time.monotonic()
            with anyio.fail_after(10):
                listed = await client.call_tool("list_collections", {})
                receipts = await client.read_resource("receipt://index")
            answered.append(time.monotonic() - start)
            assert pool.inside <= pool.size, "SymPy calls beyond the pool's size are holding threads"
            pool.release.set()
    finally:
        pool.release.set()
        service.close()
    assert not listed.is_error and receipts.contents
    assert answered[0] < 5.0, f"other tools waited {answered[0]:.1f} s behind queued SymPy calls"
