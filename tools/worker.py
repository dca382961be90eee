"""A pool of killable worker processes that run SymPy operations under time and memory limits.

SymPy cannot be interrupted from another thread, so each computation runs in a child process
that is killed (SIGKILL) when it overruns; the pool then starts a fresh one. Children die with
the parent (PR_SET_PDEATHSIG and a closed pipe), so a killed server leaves no workers behind.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)


class ComputeError(Exception):
    """A computation was refused or failed; the message is meant for the person who asked."""


class ComputeTimeout(ComputeError):
    """A computation overran its time limit and its worker was killed."""


def die_with_parent() -> None:
    """Asks Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_main(conn: Connection, memory_mb: int) -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from sme_mcp.tools.parse import ParseError
    from sme_mcp.tools.sympy_ops import OPERATIONS

    while True:
        try:
            op, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", OPERATIONS[op](**kwargs))
        except ParseError as exc:
            reply = ("error", str(exc))
        except MemoryError:
            reply = ("error", f"the computation needed more than the {memory_mb} MB memory limit")
        except RecursionError:
            reply = ("error", "the expression is too deeply nested to compute")
        except Exception as exc:  # SymPy raises many types for unsupported input
            reply = ("error", f"SymPy could not do this: {type(exc).__name__}: {str(exc)[:300]}")
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


class _Worker:
    """One `python -m sme_mcp.tools.worker` child, talking over a socketpair.

    A plain subprocess (not multiprocessing's spawn) so the caller's ``__main__`` is never
    re-imported in the child: embedding scripts need no ``if __name__ == "__main__"`` guard.
    """

    def __init__(self, memory_mb: int):
        parent, child = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sme_mcp.tools.worker", str(child.fileno()), str(memory_mb)],
            pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )
        child.close()
        self.conn = Connection(parent.detach())
        self.warm = False  # becomes True after its first reply, i.e. once SymPy is imported

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.conn.close()


class SympyWorkerPool:
    """Runs `tools.sympy_ops` operations in worker processes, at most `size` at a time.

    Args:
        size: Number of worker processes (the number of computations that run at once).
        timeout: Seconds one computation may take before its worker is killed.
        memory_mb: Address-space limit of each worker.
    """

    def __init__(self, size: int = 2, timeout: float = 10.0, memory_mb: int = 1024):
        self.size, self.timeout, self.memory_mb = size, timeout, memory_mb
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._all: set[_Worker] = set()
        self._closed = False

    def _take(self) -> _Worker:
        try:
            worker = self._idle.get_nowait()
            if worker.alive:
                return worker
            self._discard(worker)
        except queue.Empty:
            pass
        with self._lock:
            if self._closed:
                raise ComputeError("the SymPy worker pool is shut down")
            worker = _Worker(self.memory_mb)
            self._all.add(worker)
            return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)

    def run(self, op: str, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        """Runs one operation and returns its result dict.

        Raises:
            ComputeError: Bad input, an unsupported computation, or a crashed worker.
            ComputeTimeout: The computation took longer than the time limit.
        """
        limit = self.timeout if timeout is None else timeout
        with self._slots:
            worker = self._take()
            start = time.monotonic()
            try:
                worker.conn.send((op, kwargs))
                # A fresh worker spends its first second or so importing SymPy; don't bill that.
                ready = worker.conn.poll(limit if worker.warm else limit + 5.0)
            except (OSError, EOFError):
                ready = False
            if not ready:
                self._discard(worker)
                elapsed = time.monotonic() - start
                raise ComputeTimeout(
                    f"{op} took longer than the {limit:g} s limit ({elapsed:.1f} s) and was stopped; "
                    "try a smaller or simpler input"
                )
            try:
                status, payload = worker.conn.recv()
            except (EOFError, OSError):
                self._discard(worker)
                raise ComputeError(
                    f"{op} crashed its worker process (most likely the {self.memory_mb} MB memory limit)"
                ) from None
            worker.warm = True
            self._idle.put(worker)
        if status != "ok":
            raise ComputeError(payload)
        return payload

    def close(self) -> None:
        """Kills every worker; later calls raise `ComputeError`."""
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.kill()

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.proc.pid for w in self._all]


if __name__ == "__main__":
    _worker_main(Connection(int(sys.argv[1])), int(sys.argv[2]))
