"""Two real local replicas behind the LiteLLM Router: answers name their replica, and an evaluation loses no
item when one replica is killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from sme_mcp.config.settings import LMSpec, RoleSettings, Settings
from sme_mcp.experts.service import ExpertService
from sme_mcp.optimize.evaluate import run_eval
from sme_mcp.server.local_fleet import LocalFleet

pytestmark = pytest.mark.model

FACTS = [("What is the capital of France?", "Paris"), ("What colour is a ripe banana?", "yellow"),
         ("How many legs does a spider have?", "eight"), ("What is the chemical symbol for gold?", "Au"),
         ("Which planet is known as the Red Planet?", "Mars"), ("What is the largest ocean on Earth?", "Pacific")]


@pytest.fixture
def fleet(model_settings, tmp_path):
    local = model_settings.local.model_copy(update={"replicas": 2, "max_restarts": 0})
    fleet = LocalFleet(local, model_settings.cache_dir, tmp_path / "logs")
    fleet.start()
    deadline = time.monotonic() + 300
    while len(fleet.base_urls(wait=300)) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(fleet.base_urls()) == 2, fleet.status()
    yield fleet
    fleet.stop()


def test_an_eval_over_two_replicas_loses_no_item_when_one_is_killed(fleet, tmp_path):
    goldset = tmp_path / "facts.jsonl"
    goldset.write_text("".join(json.dumps({"id": f"f{i}", "domain": "general", "question": q, "answer": a,
                                           "answers": [a]}) + "\n" for i, (q, a) in enumerate(FACTS)))
    settings = Settings(data_dir=tmp_path / "data", receipts_dir=tmp_path / "receipts", retrieval_k=0,
                        lm_cache=False, general=RoleSettings(chain=[LMSpec()]))
    service = ExpertService(settings, fleet)
    first_done = threading.Event()
    killed: dict[str, int] = {}

    def progress(done: int, total: int, correct: int) -> None:
        if done >= 1:
            first_done.set()

    def kill_one() -> None:
        first_done.wait(timeout=600)
        victim = fleet.servers[0]
        killed["pid"] = victim.pid or 0
        os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]

    killer = threading.Thread(target=kill_one)
    killer.start()
    try:
        report, items = run_eval(service, "general", path=goldset, threads=2, progress=progress)
    finally:
        killer.join(timeout=60)
        service.close()
    assert killed.get("pid"), "no replica was killed"
    assert sorted(item.id for item in items) == sorted(f"f{i}" for i in range(len(FACTS)))  # each item once
    errored = [item for item in items if item.detail and "Error" in item.detail]
    assert not errored, errored
    deployments = {item.deployment.split()[0] for item in items if item.deployment}
    assert deployments <= {"local#1", "local#2"} and "local#2" in deployments, deployments
    receipt = json.loads((tmp_path / "receipts" / report.receipt).read_text())
    assert all(item["deployment"] for item in receipt["items"])  # the receipt says where each item ran
    assert report.n == len(FACTS)
