"""Background optimization jobs: one thread each, at most one per gold set, cancellable, readable later."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from sme_mcp.optimize.optimizer import OptimizationCancelled, OptimizeReport, OptimizeRequest
from sme_mcp.tools.errors import SmeError

log = logging.getLogger(__name__)

JobState = Literal["running", "succeeded", "failed", "cancelled"]
Runner = Callable[[OptimizeRequest, Callable[[str, int, int, float | None], None], threading.Event], OptimizeReport]


class JobConflict(SmeError, RuntimeError):
    """A job for the same gold set is already running."""


class JobNotFound(SmeError, KeyError):
    """No job by that id: it never existed, or its record was dropped (the message says where its result is)."""

    def __str__(self) -> str:  # KeyError's own quotes its argument
        return str(self.args[0]) if self.args else ""


class Job(BaseModel):
    id: str
    request: OptimizeRequest
    state: JobState = "running"
    phase: str = "starting"
    done: int = 0
    total: int = 0
    best: float | None = Field(default=None, description="Best score seen so far in the current phase")
    started_at: float = Field(default_factory=time.time)
    finished_at: float | None = None
    result: OptimizeReport | None = None
    error: str | None = None


KEEP_FINISHED = 20  # finished job records kept (newest first); running ones are always kept


class JobManager:
    """Runs `runner(request, progress, cancel)` in background threads.

    Records of running jobs are kept; of finished ones, only the `keep_finished` most recent (a
    forgotten job's result stays in its receipt).

    Args:
        runner: Usually `functools.partial(run_optimization, service, lm_info=...)` adapted to this signature.
        keep_finished: Finished job records kept.
    """

    def __init__(self, runner: Runner, keep_finished: int = KEEP_FINISHED):
        self.runner = runner
        self.keep_finished = max(0, keep_finished)
        self._jobs: dict[str, Job] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Condition()

    def start(self, request: OptimizeRequest) -> Job:
        """Starts a job, or raises JobConflict if one is running for the same gold set."""
        with self._lock:
            for job in self._jobs.values():
                if job.state == "running" and job.request.goldset == request.goldset:
                    raise JobConflict(
                        f"optimization job {job.id} for {request.goldset} is still running ({job.phase}); "
                        "wait for it or cancel it with cancel_optimization"
                    )
            job = Job(id=uuid.uuid4().hex[:12], request=request)
            self._jobs[job.id] = job
            self._cancels[job.id] = threading.Event()
        try:
            threading.Thread(target=self._run, args=(job.id,), name=f"optimize-{job.id}", daemon=True).start()
        except RuntimeError as exc:  # "can't start new thread": the process is at its thread limit
            with self._lock:
                del self._jobs[job.id], self._cancels[job.id]
            raise JobConflict(f"cannot start the optimization job: {exc}; wait for other work to finish and "
                              "try again") from exc
        return job.model_copy()

    def _forget_old(self) -> None:
        """Drops the oldest finished records beyond `keep_finished` (call with the lock held)."""
        finished = sorted((j for j in self._jobs.values() if j.state != "running"),
                          key=lambda j: j.finished_at or 0.0, reverse=True)
        for job in finished[self.keep_finished:]:
            del self._jobs[job.id]
            self._cancels.pop(job.id, None)

    def _update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            job = self._jobs[job_id]
            self._jobs[job_id] = job.model_copy(update=changes)
            if changes.get("state", "running") != "running":
                self._forget_old()
            self._lock.notify_all()

    def _run(self, job_id: str) -> None:
        job, cancel = self._jobs[job_id], self._cancels[job_id]

        def progress(phase: str, done: int, total: int, best: float | None) -> None:
            self._update(job_id, phase=phase, done=done, total=total, best=best)

        try:
            result = self.runner(job.request, progress, cancel)
            self._update(job_id, state="succeeded", result=result, phase="done", finished_at=time.time())
        except OptimizationCancelled:
            self._update(job_id, state="cancelled", finished_at=time.time())
        except Exception as exc:
            # A cancel that surfaced as another error (DSPy wraps interrupts) is still a cancel.
            state = "cancelled" if cancel.is_set() else "failed"
            log.warning("optimization job %s %s: %s", job_id, state, exc)
            self._update(job_id, state=state, error=f"{type(exc).__name__}: {exc}", finished_at=time.time())

    def _missing(self, job_id: str) -> JobNotFound:
        return JobNotFound(f"no optimization job {job_id!r} (the server keeps running jobs and the last "
                        f"{self.keep_finished} finished ones; a finished job's result is in its receipt, see "
                        "resource receipt://index)")

    def get(self, job_id: str) -> Job:
        with self._lock:
            if job_id not in self._jobs:
                raise self._missing(job_id)
            return self._jobs[job_id].model_copy()

    def list(self) -> list[Job]:
        with self._lock:
            return [job.model_copy() for job in self._jobs.values()]

    def cancel(self, job_id: str) -> Job:
        with self._lock:
            if job_id not in self._jobs:
                raise self._missing(job_id)
            self._cancels[job_id].set()
            return self._jobs[job_id].model_copy()

    def wait_change(self, job_id: str, seen: Job | None, timeout: float) -> Job:
        """Returns the job once it differs from `seen` (or after `timeout`).

        Raises:
            JobNotFound: No such job (or its record was dropped while waiting); a KeyError.
        """
        with self._lock:
            self._lock.wait_for(lambda: seen is None or self._jobs.get(job_id) != seen, timeout=timeout)
            if job_id not in self._jobs:
                raise self._missing(job_id)
            return self._jobs[job_id].model_copy()
