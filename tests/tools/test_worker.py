"""Tests for the SymPy worker pool: limits, crashes, clean-up and concurrency."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sme_mcp.tools.worker import ComputeError, ComputeTimeout, SympyWorkerPool

SLOW = {"op": "expand", "expression": "(x+1)**100000"}  # minutes of work and steadily growing memory


def process_state(pid: int) -> str | None:
    """The state letter of a process ('R', 'S', 'Z', ...), or None once it is gone (reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def only_pid(pool: SympyWorkerPool) -> int:
    pids = pool.worker_pids()
    assert len(pids) == 1, pids
    return pids[0]


@pytest.fixture
def pool() -> Iterator[SympyWorkerPool]:
    pool = SympyWorkerPool(size=1, timeout=2)
    yield pool
    pool.close()


def test_runs_an_operation(pool: SympyWorkerPool) -> None:
    assert pool.run("evaluate", expression="1/2+1/3")["result"] == "5/6"
    assert pool.run("solve", equations=["x**2 = 4"])["result"] == "x = -2; x = 2"


def test_time_limit_covers_the_computation_not_the_worker_start() -> None:
    # Starting a worker (importing SymPy) takes longer than 0.3 s; the first call must still succeed.
    pool = SympyWorkerPool(size=1, timeout=0.3)
    try:
        assert pool.run("evaluate", expression="2+2")["result"] == "4"
    finally:
        pool.close()


def test_errors_are_compute_errors_with_the_reason(pool: SympyWorkerPool) -> None:
    with pytest.raises(ComputeError, match="unknown function '__import__'"):
        pool.run("evaluate", expression="__import__('os')")
    with pytest.raises(ComputeError, match="SymPy could not do this: KeyError"):
        pool.run("no_such_operation")
    with pytest.raises(ComputeError, match="Modulo by zero"):
        pool.run("evaluate", expression="x % 0")
    pid = only_pid(pool)
    assert pool.run("evaluate", expression="3*3")["result"] == "9"
    assert only_pid(pool) == pid  # plain errors keep the worker


def test_timeout_kills_and_replaces_the_worker(pool: SympyWorkerPool) -> None:
    pool.run("evaluate", expression="1")
    old = only_pid(pool)
    start = time.monotonic()
    with pytest.raises(ComputeTimeout, match="took longer than the 2 s limit") as info:
        pool.run(SLOW["op"], expression=SLOW["expression"])
    elapsed = time.monotonic() - start
    assert 2.0 <= elapsed < 8.0, elapsed
    assert "try a smaller" in str(info.value)
    assert process_state(old) is None  # killed and reaped: no zombie
    new = only_pid(pool)  # the successor is started right away
    assert new != old
    assert pool.run("evaluate", expression="6*7")["result"] == "42"
    assert only_pid(pool) == new


def test_per_call_timeout(pool: SympyWorkerPool) -> None:
    pool.run("evaluate", expression="1")
    start = time.monotonic()
    with pytest.raises(ComputeTimeout, match="0.5 s limit"):
        pool.run(SLOW["op"], timeout=0.5, expression=SLOW["expression"])
    assert time.monotonic() - start < 5.0


def test_memory_limit_is_a_clear_compute_error() -> None:
    pool = SympyWorkerPool(size=1, timeout=60, memory_mb=250)
    try:
        pool.run("evaluate", expression="1")
        old = only_pid(pool)
        with pytest.raises(ComputeError) as info:
            pool.run("expand", expression="(a+b+c+d+e+f+g+h)**20")  # ~900k terms
        assert not isinstance(info.value, ComputeTimeout)
        assert "250 MB memory limit" in str(info.value)
        # After a MemoryError the worker is replaced, not reused.
        assert pool.run("evaluate", expression="2**10")["result"] == "1024"
        assert process_state(old) is None
        assert only_pid(pool) != old
    finally:
        pool.close()


def test_worker_that_cannot_start_is_a_clear_compute_error() -> None:
    pool = SympyWorkerPool(size=1, timeout=5, memory_mb=20)  # too little to import SymPy
    try:
        with pytest.raises(ComputeError, match="failed to start .*20 MB"):
            pool.run("evaluate", expression="1")
    finally:
        pool.close()


def test_segfault_in_a_worker_is_a_compute_error_and_the_pool_recovers(pool: SympyWorkerPool) -> None:
    pool.run("evaluate", expression="1")
    victim = only_pid(pool)
    errors: list[BaseException] = []

    def slow_call() -> None:
        try:
            pool.run(SLOW["op"], timeout=30, expression=SLOW["expression"])
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            errors.append(exc)

    caller = threading.Thread(target=slow_call)
    caller.start()
    time.sleep(0.5)
    os.kill(victim, signal.SIGSEGV)
    caller.join(timeout=15)
    assert not caller.is_alive()
    assert len(errors) == 1 and type(errors[0]) is ComputeError, errors
    assert "crashed its worker process (killed by SIGSEGV)" in str(errors[0])
    assert process_state(victim) is None
    assert pool.run("evaluate", expression="2+3") == {"result": "5", "latex": "5", "numeric": None}


def test_sigint_does_not_reach_the_computation(pool: SympyWorkerPool) -> None:
    pool.run("evaluate", expression="1")
    pid = only_pid(pool)
    os.kill(pid, signal.SIGINT)  # what Ctrl-C in a terminal would send; the worker ignores it
    time.sleep(0.2)
    assert pool.run("factor", expression="360")["result"] == "2**3*3**2*5"
    assert only_pid(pool) == pid


def test_results_up_to_the_size_limit_are_printed(pool: SympyWorkerPool) -> None:
    # 4516 digits: past CPython's default int-to-text limit (4300), inside MAX_RESULT_CHARS.
    result = pool.run("evaluate", expression="2**15000")["result"]
    assert len(result) == 4516 and result.startswith("28179608796")
    with pytest.raises(ComputeError, match="more than 20000 digits|20000"):
        pool.run("evaluate", expression="*".join(["10**20000"] * 3))


def test_close_leaves_no_children() -> None:
    pool = SympyWorkerPool(size=2, timeout=5)
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda e: pool.run("evaluate", expression=e), ["1+1", "2+2", "3+3", "4+4"]))
    pids = pool.worker_pids()
    assert 1 <= len(pids) <= 2
    pool.close()
    assert pool.worker_pids() == []
    for pid in pids:
        assert process_state(pid) is None, f"worker {pid} left behind"
    with pytest.raises(ComputeError, match="shut down"):
        pool.run("evaluate", expression="1")


def test_concurrent_calls_get_their_own_results() -> None:
    pool = SympyWorkerPool(size=2, timeout=10)
    try:
        def call(i: int) -> tuple[int, str]:
            return i, pool.run("evaluate", expression=f"{i}*1000 + {i}/7")["result"]

        with ThreadPoolExecutor(12) as ex:
            results = list(ex.map(call, range(60)))
        for i, result in results:
            expected = f"{i * 7000 + i}/7" if i % 7 else str(i * 1000 + i // 7)
            assert result == expected, (i, result)
        assert len(pool.worker_pids()) <= 2
    finally:
        pool.close()


def test_worker_survives_the_thread_that_started_it(pool: SympyWorkerPool) -> None:
    # PR_SET_PDEATHSIG fires when the spawning *thread* exits; anyio's worker threads come and go.
    spawner = threading.Thread(target=lambda: pool.run("evaluate", expression="1"))
    spawner.start()
    spawner.join()
    pid = only_pid(pool)
    time.sleep(1.0)
    assert process_state(pid) not in (None, "Z")
    assert pool.run("evaluate", expression="2+3")["result"] == "5"
    assert only_pid(pool) == pid


def test_busy_worker_exits_when_the_server_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal, threading, time
        from sme_mcp.tools.worker import SympyWorkerPool
        pool = SympyWorkerPool(size=1, timeout=600)
        pool.run("evaluate", expression="1")
        print(pool.worker_pids()[0], flush=True)
        threading.Thread(target=pool.run, args=({SLOW['op']!r},), kwargs={{"expression": {SLOW['expression']!r}}},
                         daemon=True).start()
        time.sleep(1)
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up code runs
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    worker = int(proc.stdout.split()[0])
    # Gone, or a zombie waiting for an init that does not reap (containers): either way it stopped.
    assert wait_until(lambda: process_state(worker) in (None, "Z"), timeout=10), process_state(worker)
