"""Threads that follow the machine's load: the neighbour-load counters, the layout policy, and the pair of
supervised servers (run here with the second llama-server-compatible binary, tests/data/second_llama_server.py;
tests/integration/test_adaptive_threads_real.py runs the real model)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_local_server_binary import wrapper

from sme_mcp.config.settings import LMSpec, LocalServerSettings, Settings
from sme_mcp.experts.lm import LMChain
from sme_mcp.server import cpu_load
from sme_mcp.server.adaptive_local import ALL_CORES, SPARE_CORE, AdaptiveLocal, layouts, next_layout
from sme_mcp.server.cpu_load import NeighbourLoad, machine_busy_seconds, own_tree_seconds
from sme_mcp.server.serve import make_local, uses_adaptive_threads

TICKS = os.sysconf("SC_CLK_TCK")
BUSY_LOOP = "while True: pass"


def write_proc(root: Path, cpu_line: str, processes: dict[int, tuple[str, int, int, int, int, int]],
               children_files: bool) -> Path:
    """A /proc stand-in: `stat` with the machine's CPU line, and per pid (comm, ppid, utime, stime, cutime, cstime);
    with `children_files`, each process's `task/PID/children` as Linux with CONFIG_PROC_CHILDREN has them."""
    root.mkdir()
    (root / "stat").write_text(cpu_line + "\ncpu0 1 2 3 4\n")
    for pid, (comm, ppid, utime, stime, cutime, cstime) in processes.items():
        (root / str(pid)).mkdir()
        # Fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
        (root / str(pid) / "stat").write_text(
            f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 10 0 0 0 {utime} {stime} {cutime} {cstime} 20 0 1 0\n")
        if children_files:
            (root / str(pid) / "task" / str(pid)).mkdir(parents=True)
            kids = [str(child) for child, spec in processes.items() if spec[1] == pid]
            (root / str(pid) / "task" / str(pid) / "children").write_text(" ".join(kids) + (" " if kids else ""))
    return root


@pytest.mark.parametrize("children_files", [True, False], ids=["children-files", "scan"])
def test_the_counters_sum_our_process_tree_and_the_machine_s_busy_time(tmp_path, children_files):
    proc = write_proc(tmp_path / "proc", "cpu  100 10 50 5000 70 5 5 30 0 0", {
        1: ("init", 0, 999, 999, 0, 0),
        100: ("python3 (sme) mcp", 1, 40, 10, 7, 3),   # a name with spaces and parentheses
        101: ("llama-server", 100, 200, 20, 0, 0),
        102: ("sh", 101, 5, 5, 0, 0),                 # a grandchild
        200: ("neighbour", 1, 300, 0, 0, 0),
    }, children_files)
    # busy = user + nice + system + irq + softirq + steal; idle and iowait are not busy
    assert machine_busy_seconds(proc) == pytest.approx((100 + 10 + 50 + 5 + 5 + 30) / TICKS)
    # our own time, our reaped children's (cutime, cstime) and every live descendant's
    assert own_tree_seconds(100, proc) == pytest.approx((40 + 10 + 7 + 3 + 200 + 20 + 5 + 5) / TICKS)
    assert own_tree_seconds(200, proc) == pytest.approx(300 / TICKS)
    assert own_tree_seconds(4242, proc) == 0.0  # a process that has ended


def foreign_busy_process() -> int:
    """A process keeping one core busy that is *not* ours: the shell that starts it exits, so init adopts it."""
    out = subprocess.run(["sh", "-c", f"{sys.executable} -c '{BUSY_LOOP}' >/dev/null 2>&1 & echo $!"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def average_over(load: NeighbourLoad, seconds: float) -> float:
    time.sleep(seconds)
    cores = load.cores()
    assert cores is not None
    return cores


@pytest.mark.skipif(not cpu_load.available(), reason="needs Linux /proc")
def test_a_neighbour_s_busy_core_counts_and_our_own_busy_child_does_not():
    load = NeighbourLoad(window=2.0, interval=0.25)
    load.start()
    try:
        before = average_over(load, 2.5)  # whatever else the machine runs: the figures below are against it
        own = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
        try:
            with_own_child = average_over(load, 2.5)
        finally:
            own.kill()
            own.wait()
        pid = foreign_busy_process()
        try:
            with_neighbour = average_over(load, 2.5)
        finally:
            os.kill(pid, signal.SIGKILL)
    finally:
        load.stop()
    assert with_own_child - before < 0.4, (before, with_own_child)
    assert with_neighbour - before > 0.6, (before, with_neighbour)


def test_the_layout_moves_to_the_spare_core_under_load_and_back_only_well_below_it():
    assert next_layout(ALL_CORES, 0.0, 0.5) == ALL_CORES
    assert next_layout(ALL_CORES, 0.49, 0.5) == ALL_CORES
    assert next_layout(ALL_CORES, 0.5, 0.5) == SPARE_CORE
    assert next_layout(SPARE_CORE, 0.3, 0.5) == SPARE_CORE  # hysteresis: back only at half the threshold
    assert next_layout(SPARE_CORE, 0.25, 0.5) == ALL_CORES
    assert next_layout(SPARE_CORE, None, 0.5) == SPARE_CORE  # no sample yet: keep what it was
    two = layouts(LocalServerSettings(), 2)
    assert (two[ALL_CORES].threads, two[ALL_CORES].threads_batch) == (2, None)
    assert (two[SPARE_CORE].threads, two[SPARE_CORE].threads_batch) == (1, 2)
    four = layouts(LocalServerSettings(), 4)
    assert (four[ALL_CORES].threads, four[SPARE_CORE].threads, four[SPARE_CORE].threads_batch) == (4, 3, 4)


def test_threads_follow_the_load_by_default_and_never_when_the_user_chose_them(monkeypatch):
    for var in ("SME_LOCAL__THREADS", "SME_LOCAL__THREADS_BATCH", "SME_LOCAL__REPLICAS", "SME_LOCAL__ADAPTIVE_THREADS"):
        monkeypatch.delenv(var, raising=False)
    assert uses_adaptive_threads(Settings().local, cpus=2) is cpu_load.available()
    assert not uses_adaptive_threads(Settings().local, cpus=1)
    assert not uses_adaptive_threads(Settings().local, cpus=8)
    monkeypatch.setenv("SME_LOCAL__THREADS", "2")
    assert not uses_adaptive_threads(Settings().local, cpus=2)
    monkeypatch.delenv("SME_LOCAL__THREADS")
    monkeypatch.setenv("SME_LOCAL__THREADS_BATCH", "2")
    assert not uses_adaptive_threads(Settings().local, cpus=2)
    monkeypatch.delenv("SME_LOCAL__THREADS_BATCH")
    monkeypatch.setenv("SME_LOCAL__ADAPTIVE_THREADS", "false")
    assert not uses_adaptive_threads(Settings().local, cpus=2)
    monkeypatch.delenv("SME_LOCAL__ADAPTIVE_THREADS")
    monkeypatch.setenv("SME_LOCAL__REPLICAS", "2")
    assert not uses_adaptive_threads(Settings().local, cpus=2)


class SetLoad(NeighbourLoad):
    """The sampler with the neighbours' cores set by the test (the real sampler is tested above)."""

    def __init__(self) -> None:
        super().__init__()
        self.value: float | None = 0.0

    def start(self) -> None:
        pass

    def cores(self) -> float | None:
        return self.value


def launch_pair(tmp_path: Path, load: NeighbourLoad) -> AdaptiveLocal:
    model = tmp_path / "ggml-model-i2_s.gguf"
    model.write_bytes(b"GGUF stand-in: the second server only checks that the file exists")
    settings = LocalServerSettings(binary=wrapper(tmp_path), model_path=model, startup_timeout=30)
    pair = AdaptiveLocal(settings, tmp_path / "cache", tmp_path / "logs", cpus=2, load=load)
    pair.start()
    deadline = time.monotonic() + 30
    while not all(s.state == "ready" for s in pair.servers.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(s.state == "ready" for s in pair.servers.values()), pair.status()
    return pair


def launch_line(log: Path) -> str:
    return next(line for line in log.read_text().splitlines() if line.startswith("=== "))


def test_each_call_goes_to_the_layout_the_load_calls_for_and_answers_name_it(tmp_path):
    load = SetLoad()
    pair = launch_pair(tmp_path, load)
    try:
        assert " -t 2 " in launch_line(tmp_path / "logs" / "llama-server.log")
        assert " -t 1 " in launch_line(tmp_path / "logs" / "llama-server-spare-core.log")
        assert " -tb 2" in launch_line(tmp_path / "logs" / "llama-server-spare-core.log")
        urls = {name: server.base_url() for name, server in pair.servers.items()}
        assert urls[ALL_CORES] != urls[SPARE_CORE]
        chain = LMChain("general", [LMSpec()], pair)

        def served_by() -> str | None:
            deployments, _ = chain._deployments(0.0)
            assert len(deployments) == 1
            return deployments[0].served.deployment

        assert served_by() == f"local:all-cores {urls[ALL_CORES]}"
        load.value = 1.0
        assert served_by() == f"local:spare-core {urls[SPARE_CORE]}"
        load.value = 0.4
        assert served_by() == f"local:spare-core {urls[SPARE_CORE]}"
        load.value = 0.1
        assert served_by() == f"local:all-cores {urls[ALL_CORES]}"
        assert pair.switches == 2
        status = pair.status()
        assert status["layout"] == ALL_CORES and status["neighbour_cores"] == 0.1
        assert status["servers"][SPARE_CORE]["flags"] == "-t 1 -tb 2"
        info = pair.model_info()
        assert info["threads"] == "adaptive"
        assert info["layouts"] == {ALL_CORES: "-t 2", SPARE_CORE: "-t 1 -tb 2"}
    finally:
        pair.stop()
    assert all(s.pid is None for s in pair.servers.values())


def test_while_the_chosen_server_is_down_the_other_one_serves(tmp_path):
    pair = launch_pair(tmp_path, SetLoad())
    try:
        spare_url = pair.servers[SPARE_CORE].base_url()
        os.kill(pair.servers[ALL_CORES].pid, signal.SIGKILL)  # type: ignore[arg-type]
        time.sleep(0.7)  # the supervisor notices within half a second
        assert pair.choose() == ALL_CORES
        assert pair.ready_deployments(wait=0.0) == [("local:spare-core", spare_url)]
        deadline = time.monotonic() + 30
        while pair.servers[ALL_CORES].state != "ready" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pair.ready_deployments()[0][0] == "local:all-cores"  # restarted by its supervisor
    finally:
        pair.stop()


def test_make_local_builds_the_pair_by_default_with_its_logs_in_the_data_dir(tmp_path, monkeypatch):
    for var in ("SME_LOCAL__THREADS", "SME_LOCAL__THREADS_BATCH", "SME_LOCAL__REPLICAS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    settings = Settings(data_dir=tmp_path / "data")
    local = make_local(settings)
    if not cpu_load.available():
        pytest.skip("needs Linux /proc")
    assert isinstance(local, AdaptiveLocal)
    assert local.log_path == tmp_path / "data" / "logs" / "llama-server.log"
    assert local.servers[SPARE_CORE].log_path == tmp_path / "data" / "logs" / "llama-server-spare-core.log"
