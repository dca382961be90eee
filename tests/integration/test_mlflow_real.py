"""MLflow tracing of expert calls (a local sqlite store, no server)."""

from __future__ import annotations

from sme_mcp.config.settings import LMSpec, MLflowSettings, RoleSettings, Settings
from sme_mcp.experts.service import ExpertService


def test_mlflow_traces_an_expert_call_to_sqlite(local_server, tmp_path):
    import mlflow

    settings = Settings(
        data_dir=tmp_path / "data", mlflow=MLflowSettings(enabled=True), general=RoleSettings(chain=[LMSpec()])
    )
    service = ExpertService(settings, local_server)
    try:
        answer = service.ask("Name one primary colour.", domain="general")
    finally:
        service.close()
    assert answer.backend == "local"
    assert (tmp_path / "data" / "mlflow.db").is_file()
    mlflow.flush_trace_async_logging()
    traces = mlflow.search_traces(return_type="list")
    assert traces, "no trace was recorded"
    spans = [span.name for trace in traces for span in trace.data.spans]
    assert any("GeneralExpert" in name for name in spans), spans
    assert any("LM" in name for name in spans), spans
