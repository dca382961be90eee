"""A pool of killable worker processes that run SymPy operations under time and memory limits.

SymPy cannot be interrupted from another thread, so each computation runs in a child process
that is killed (SIGKILL) when it overruns; the pool then starts a fresh one. Children exit when
the server process does (a watchdog thread notices they were re-parented, and an idle worker sees
its socket close), so a killed server leaves no workers behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from sme_mcp.tools.errors import SmeError

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 60.0  # seconds a new worker may take to import SymPy (a cold disk on a busy machine)
# Small computations that import SymPy's lazily loaded modules before the worker reports ready, so
# the first real call is not billed for them.
WARM_UP: list[tuple[str, dict[str, Any]]] = [
    ("evaluate", {"expression": "1/2 + sqrt(2)"}),
    ("simplify", {"expression": "sin(x)**2 + cos(x)**2"}),
    ("integrate", {"expression": "x*exp(x)"}),
    ("series", {"expression": "exp(x)"}),
]


class ComputeError(SmeError):
    """A computation was refused or failed; the message is meant for the person who asked."""


class ComputeTimeout(ComputeError):
    """A computation overran its time limit and its worker was killed."""


def _exit_with_parent(parent_pid: int) -> None:
    """Ends this process as soon as its parent is gone (it is then re-parented to init or a subreaper).

    Not PR_SET_PDEATHSIG: Linux sends that signal when the *thread* that spawned the child exits,
    and the pool spawns workers from short-lived anyio worker threads.
    """
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not take the worker down
        text = ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _worker_main(conn: Connection, memory_mb: int, parent_pid: int) -> None:
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from sme_mcp.tools.parse import ParseError
    from sme_mcp.tools.sympy_ops import MAX_RESULT_CHARS, OPERATIONS

    # Results may hold ints of up to MAX_RESULT_CHARS digits, past CPython's default of 4300.
    sys.set_int_max_str_digits(max(MAX_RESULT_CHARS, sys.get_int_max_str_digits()))
    for op, kwargs in WARM_UP:
        OPERATIONS[op](**kwargs)
    try:
        conn.send(("ready", os.getpid()))  # the pool starts the time limit only after this
    except (OSError, ValueError):
        return
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
            # Memory may be fragmented or a SymPy cache half-filled: ask the pool for a fresh worker.
            reply = ("fatal", f"the computation needed more than the {memory_mb} MB memory limit; try a smaller input")
        except RecursionError:
            reply = ("error", "the expression is too deeply nested to compute")
        except Exception as exc:  # SymPy raises many types for unsupported input
            reply = ("error", f"SymPy could not do this: {_describe(exc)}")
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return
        if reply[0] == "fatal":
            return


class _Worker:
    """One `python -m sme_mcp.tools.worker` child, talking over a socketpair.

    A plain subprocess (not multiprocessing's spawn) so the caller's ``__main__`` is never
    re-imported in the child: embedding scripts need no ``if __name__ == "__main__"`` guard.
    """

    def __init__(self, memory_mb: int):
        parent, child = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sme_mcp.tools.worker", str(child.fileno()), str(memory_mb), str(os.getpid())],
            pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            # Own session: a Ctrl-C or hangup meant for the server's terminal never reaches a worker,
            # even before the worker has set SIGINT to ignore.
            start_new_session=True,
        )
        child.close()
        self.conn = Connection(parent.detach())
        self.memory_mb = memory_mb
        self.ready = False  # becomes True once it has sent its greeting, i.e. imported SymPy

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self) -> None:
        """Waits for the greeting a worker sends once SymPy is imported.

        Raises:
            ComputeError: The worker died while starting or did not start in time.
        """
        if self.ready:
            return
        if not self.conn.poll(STARTUP_TIMEOUT):
            raise ComputeError(f"a SymPy worker process did not start within {STARTUP_TIMEOUT:g} s; try again")
        try:
            self.conn.recv()
        except (EOFError, OSError):
            raise ComputeError(
                f"a SymPy worker process failed to start ({self.death()}); the server log has its error "
                f"(a memory limit of {self.memory_mb} MB may be too small to import SymPy)"
            ) from None
        self.ready = True

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)  # reaps it: no zombie left
        self.conn.close()

    def death(self) -> str:
        """How the process ended, e.g. 'killed by SIGSEGV' or 'exit code 1' (waits briefly for it)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)
        code = self.proc.returncode
        if code is None:
            return "stopped answering"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
            return f"killed by signal {-code}"
        return f"exit code {code}"


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
        worker = self._spawn()
        if worker is None:
            raise ComputeError("the SymPy worker pool is shut down")
        return worker

    def _spawn(self) -> _Worker | None:
        with self._lock:
            if self._closed:
                return None
            worker = _Worker(self.memory_mb)
            self._all.add(worker)
            return worker

    def _replace(self, worker: _Worker) -> None:
        """Kills a worker and starts its successor now, so it imports SymPy before the next call."""
        self._discard(worker)
        successor = self._spawn()
        if successor is not None:
            self._idle.put(successor)

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)

    def run(self, op: str, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        """Runs one operation and returns its result dict.

        The time limit covers the computation only, not the start of a fresh worker.

        Raises:
            ComputeError: Bad input, an unsupported computation, or a crashed worker.
            ComputeTimeout: The computation took longer than the time limit.
        """
        limit = self.timeout if timeout is None else timeout
        with self._slots:
            worker = self._take()
            try:
                worker.wait_ready()
                start = time.monotonic()
                worker.conn.send((op, kwargs))
                # poll() also returns True at end of file, i.e. when the worker died.
                ready = worker.conn.poll(limit)
                status, payload = worker.conn.recv() if ready else (None, None)
            except (OSError, EOFError):
                raise self._crashed(worker, op) from None
            except BaseException:
                # ComputeError from wait_ready, or e.g. KeyboardInterrupt in this thread: the worker may be
                # mid-computation with a reply we will never read, so it cannot go back to the pool.
                self._discard(worker)
                raise
            if not ready:
                self._replace(worker)
                elapsed = time.monotonic() - start
                raise ComputeTimeout(
                    f"{op} took longer than the {limit:g} s limit ({elapsed:.1f} s) and was stopped; "
                    "try a smaller or simpler input"
                )
            if status == "fatal":
                self._replace(worker)
            else:
                self._idle.put(worker)
        if status != "ok":
            raise ComputeError(payload)
        return payload

    def _crashed(self, worker: _Worker, op: str) -> ComputeError:
        """Replaces a worker that died mid-call and returns the error to raise."""
        how = worker.death()
        self._replace(worker)
        log.warning("SymPy worker %s died during %s (%s)", worker.proc.pid, op, how)
        return ComputeError(
            f"{op} crashed its worker process ({how}); the input probably needs more than the "
            f"{self.memory_mb} MB memory limit or recursed too deeply. Try a smaller or simpler input"
        )

    def close(self) -> None:
        """Kills every worker; later calls raise `ComputeError`."""
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.kill()

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring and tests)."""
        with self._lock:
            return [w.proc.pid for w in self._all]


if __name__ == "__main__":
    _worker_main(Connection(int(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3]))
