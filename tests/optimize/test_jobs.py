"""Optimization job records: bounded (running ones and the last N finished), with errors that say why."""

from __future__ import annotations

import threading

import pytest

from sme_mcp.optimize.jobs import JobManager
from sme_mcp.optimize.optimizer import OptimizeRequest


def test_finished_jobs_are_forgotten_beyond_the_last_n_but_running_ones_are_kept():
    release = threading.Event()

    def runner(request, progress, cancel):
        if request.goldset == "router":
            release.wait(30)  # stays running until the end of the test
        raise RuntimeError("no model here")

    jobs = JobManager(runner, keep_finished=3)
    running = jobs.start(OptimizeRequest(goldset="router"))
    finished = []
    for _ in range(10):
        job = jobs.start(OptimizeRequest(goldset="math"))
        while jobs.get(job.id).state == "running":
            jobs.wait_change(job.id, jobs.get(job.id), 1.0)
        finished.append(job.id)
    try:
        kept = {job.id for job in jobs.list()}
        assert kept == {running.id, *finished[-3:]}  # the running one and the 3 newest finished
        assert jobs.get(running.id).state == "running"
        for forgotten in (finished[0], "nope"):
            with pytest.raises(KeyError) as missing:
                jobs.get(forgotten)
            assert "last 3 finished" in str(missing.value) and "receipt" in str(missing.value)
            with pytest.raises(KeyError):
                jobs.cancel(forgotten)
            with pytest.raises(KeyError):
                jobs.wait_change(forgotten, None, 0.1)
    finally:
        release.set()
    assert jobs.get(finished[-1]).error == "RuntimeError: no model here"
