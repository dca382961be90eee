"""A shared MLflow tracking server: a real `mlflow server` on 127.0.0.1 receives expert traces and
optimizer runs (params, metrics, the receipt as an artifact) from sme-mcp via SME_MLFLOW__TRACKING_URI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sme_mcp.config.settings import LMSpec, MLflowSettings, RoleSettings, Settings
from sme_mcp.experts.service import ExpertService
from sme_mcp.optimize.optimizer import OptimizeRequest, run_optimization

pytestmark = pytest.mark.model

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real MLflow tracking server with its own sqlite store and artifact folder."""
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    log = (tmp_path / "mlflow-server.log").open("wb")
    proc = subprocess.Popen(
        [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'shared.db'}",
         "--artifacts-destination", str(tmp_path / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(tmp_path / 'mlflow-server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_expert_traces_and_optimizer_runs_reach_a_shared_mlflow_server(local_server, mlflow_server, router_goldsets,
                                                                        tmp_path):
    import mlflow
    from mlflow import MlflowClient

    goldsets = router_goldsets
    local_only = RoleSettings(chain=[LMSpec()])
    settings = Settings(
        data_dir=tmp_path / "data", receipts_dir=tmp_path / "receipts", goldsets_dir=goldsets,
        mlflow=MLflowSettings(enabled=True, tracking_uri=mlflow_server, experiment="sme-shared"),
        general=local_only, router=local_only,
    )
    service = ExpertService(settings, local_server)
    try:
        answer = service.ask("Name one primary colour.", domain="general")
        report = run_optimization(service, OptimizeRequest(goldset="router", train_limit=2, dev_limit=2,
                                                           holdout_limit=2))
    finally:
        service.close()
    assert answer.backend == "local"
    assert not (tmp_path / "data" / "mlflow.db").exists()  # nothing went to the one-machine default
    mlflow.flush_trace_async_logging()
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("sme-shared")
    assert experiment is not None
    traces = client.search_traces(locations=[experiment.experiment_id])
    spans = [span.name for trace in traces for span in trace.data.spans]
    assert any("RetrievalGeneralExpert" in name or "GeneralExpert" in name for name in spans), spans
    runs = client.search_runs([experiment.experiment_id], filter_string="attributes.run_name LIKE 'optimize-router-%'")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["goldset"] == "router" and run.data.params["optimizer"] == "bootstrap"
    assert run.data.metrics["candidate_gate"] == report.candidate.score
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    assert artifacts == [report.receipt], artifacts
    shipped = (tmp_path / "artifacts").rglob(report.receipt or "?")
    assert any(json.loads(p.read_text())["kind"] == "optimize" for p in shipped)  # the receipt itself, on the server
