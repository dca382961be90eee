"""How much CPU the rest of the machine is using: the neighbours of this process and its children.

llama-server's generation threads wait for each other at every step, so on a 2-core machine a
server using both cores (`-t 2`) runs 1.7x faster than one using a single core while the machine is
idle, and falls to about a third of its speed as soon as another process takes a core
(bench/server_settings.py). Choosing the thread count therefore needs to know what *other*
processes use: this process, its llama-servers, SymPy workers and sandboxed code are our own work
and never count against it.

Read from Linux's `/proc` (the machine's busy time in `/proc/stat`, every process's own time in
`/proc/PID/stat`); elsewhere `available()` is False and nothing is sampled.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from pathlib import Path

PROC = Path("/proc")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # the unit of /proc's CPU times


def available() -> bool:
    """Whether this system exposes the counters the sampler reads (Linux `/proc`)."""
    return (PROC / "stat").is_file() and (PROC / "self" / "stat").is_file()


def machine_busy_seconds(proc: Path = PROC) -> float:
    """CPU seconds the whole machine has been busy since boot, summed over its cores.

    Busy is everything but idle and I/O wait; steal (time the hypervisor gave this VM's cores to
    someone else) counts, since a core taken away stalls a multi-threaded llama-server the same way.
    """
    fields = (proc / "stat").read_text().split("\n", 1)[0].split()
    # cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is already in user)
    values = [int(v) for v in fields[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values + [0] * (8 - len(values))
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


def _stat_fields(proc: Path, pid: int) -> list[str]:
    """Fields 3.. of `/proc/PID/stat` (state first): the command name (field 2) may hold spaces and parentheses."""
    text = (proc / str(pid) / "stat").read_text()
    return text[text.rfind(")") + 2:].split()


def _children(proc: Path, pid: int) -> list[int] | None:
    """The live children of `pid` from its threads' `children` files; None where the kernel has no such files."""
    try:
        tasks = list((proc / str(pid) / "task").iterdir())
    except OSError:  # the process ended while we looked, or the system has no per-thread entries
        return None if (proc / str(pid)).is_dir() else []
    found: list[int] = []
    for task in tasks:
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:
            return None
        except OSError:
            continue
    return found


def _children_by_scan(proc: Path) -> dict[int, list[int]]:
    """Every process's children, from one pass over `/proc` (kernels without CONFIG_PROC_CHILDREN)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                children[int(_stat_fields(proc, int(entry.name))[1])].append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return children


def own_tree_seconds(root: int | None = None, proc: Path = PROC) -> float:
    """CPU seconds used by process `root` (default: this one), its live descendants and its reaped children.

    The descendants are found through each process's `task/*/children` files (a handful of reads), or by one pass
    over `/proc` where the kernel does not offer them.
    """
    root = os.getpid() if root is None else root
    scanned: dict[int, list[int]] | None = None
    total, stack, first = 0.0, [root], True
    while stack:
        pid = stack.pop()
        try:
            fields = _stat_fields(proc, pid)
        except OSError:  # it ended while we looked
            continue
        # fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
        total += (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        if first:  # children that ended and were waited for keep counting as ours
            total += (int(fields[13]) + int(fields[14])) / _CLOCK_TICKS
            first = False
        kids = _children(proc, pid) if scanned is None else scanned.get(pid, [])
        if kids is None:
            scanned = _children_by_scan(proc)
            kids = scanned.get(pid, [])
        stack.extend(kids)
    return total


class NeighbourLoad:
    """A background sampler of the cores other processes keep busy, averaged over a recent window.

    Args:
        window: Seconds the average covers.
        interval: Seconds between samples.

    Example:
        >>> load = NeighbourLoad(window=3.0)
        >>> load.start(); time.sleep(3.5)
        >>> load.cores()   # about 1.0 while another program keeps one core busy
        0.02
    """

    def __init__(self, window: float = 3.0, interval: float = 0.5):
        self.window, self.interval = window, interval
        self._samples: collections.deque[tuple[float, float, float]] = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Starts sampling in a daemon thread (once); a system without `/proc` samples nothing."""
        if not available() or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self.sample()
        self._thread = threading.Thread(target=self._run, name="neighbour-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def sample(self) -> None:
        """Takes one sample now and drops the ones older than the window needs."""
        try:
            now, busy, own = time.monotonic(), machine_busy_seconds(), own_tree_seconds()
        except (OSError, ValueError, IndexError):
            return
        with self._lock:
            self._samples.append((now, busy, own))
            # Keep one sample older than the window, so the average always spans the whole window.
            while len(self._samples) > 2 and self._samples[1][0] <= now - self.window:
                self._samples.popleft()

    def cores(self) -> float | None:
        """Cores the neighbours used on average over the window (0.0 idle, 1.0 one busy core); None before 2 samples."""
        with self._lock:
            if len(self._samples) < 2:
                return None
            (t0, busy0, own0), (t1, busy1, own1) = self._samples[0], self._samples[-1]
        if t1 - t0 <= 0:
            return None
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / (t1 - t0))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()
