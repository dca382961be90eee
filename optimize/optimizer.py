"""`run_optimization`: compile on train, choose on dev, report on holdout.

The candidate is compiled on train (optimizers that select among candidates select on the first
half of dev), then the active program and the candidate are scored on the same gate items (the
rest of dev, or all of it when nothing selected on it): that is the gate, and the candidate is
promoted only if it wins there. Both are then scored on the same holdout items,
which neither the optimizer nor the gate ever saw: that is the score the receipt reports. The
receipt lists which items chose the program (train, dev) and which scored it (holdout).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from sme_mcp.experts.registry import ROUTER
from sme_mcp.optimize.goldsets import GoldItem, GoldsetError, load_goldset, split_sizes
from sme_mcp.optimize.receipts import environment, write_receipt
from sme_mcp.optimize.scoring import score_item
from sme_mcp.optimize.selection import holdout_items_that_chose
from sme_mcp.optimize.stats import mcnemar_exact, wilson_interval

if TYPE_CHECKING:
    import dspy

    from sme_mcp.experts.service import ExpertService

Optimizer = Literal["bootstrap", "bootstrap_rs", "mipro", "gepa"]
Budget = Literal["light", "medium", "heavy"]
Progress = Callable[[str, int, int, float | None], None]  # (phase, done, total, best score so far)

DEMOS = {"light": 2, "medium": 4, "heavy": 8}
RANDOM_SEARCH_CANDIDATES = {"light": 4, "medium": 8, "heavy": 16}


class OptimizationCancelled(BaseException):
    """Raised from inside the optimizer's metric; a BaseException so DSPy's error counting can't swallow it."""


class OptimizeRequest(BaseModel):
    goldset: str = Field(min_length=1, max_length=32, description="'router' or an expert's name")
    optimizer: Optimizer = "bootstrap"
    budget: Budget = "light"
    seed: int = 0
    train_limit: int | None = Field(default=None, ge=1)
    dev_limit: int | None = Field(default=None, ge=1)
    holdout_limit: int | None = Field(default=None, ge=1)
    threads: int = Field(default=1, ge=1, le=16)
    from_usage: bool = Field(
        default=False, description="Also train on the items curated from rated answers in the usage log "
        "(optimize/usage_items.py); they are only ever train items",
    )


GATE_SPLIT = "dev"


class SideScore(BaseModel):
    version: str
    score: float
    correct: int
    n: int
    ci_low: float
    ci_high: float


class OptimizeReport(BaseModel):
    request: OptimizeRequest
    gate_split: str = Field(default=GATE_SPLIT, description="The split the gate compared the programs on")
    baseline: SideScore = Field(description="The active program on the gate items")
    candidate: SideScore = Field(description="The candidate on the gate items")
    delta: float
    mcnemar: dict[str, float] = Field(description="b: only baseline right, c: only candidate right, p: two-sided")
    holdout_baseline: SideScore | None = Field(default=None, description="The active program on the holdout items")
    holdout_candidate: SideScore | None = Field(default=None, description="The candidate on the holdout items")
    holdout_delta: float | None = None
    holdout_mcnemar: dict[str, float] | None = None
    promoted: bool
    active_version: str
    candidate_version: str
    wall_s: float
    lm_calls: int
    metric_calls: int
    train_from_usage: int = Field(default=0, description="Train items that came from rated answers in the usage log")
    receipt: str | None = None


def _feedback_metric(metric_name: str, count: Callable[[], None], cancel: threading.Event):
    """GEPA metric: a score plus text saying what was wrong, which is what its reflection learns from."""
    import dspy

    def metric(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> Any:
        if cancel.is_set():
            raise OptimizationCancelled
        count()
        scored = score_item(metric_name, gold.gold, pred)
        feedback = "Correct." if scored.correct else f"Incorrect. {scored.detail or ''}".strip()
        return dspy.Prediction(score=float(scored.correct), feedback=feedback)

    return metric


def _plain_metric(metric_name: str, count: Callable[[], None], cancel: threading.Event):
    def metric(example: Any, pred: Any, trace: Any = None) -> float:
        if cancel.is_set():
            raise OptimizationCancelled
        count()
        return float(score_item(metric_name, example.gold, pred).correct)

    return metric


def _examples(items: list[GoldItem]) -> list[dspy.Example]:
    import dspy

    return [dspy.Example(question=item.question, gold=item).with_inputs("question") for item in items]


def _compile(req: OptimizeRequest, student: dspy.Module, train: list, dev: list, lm: Any, metric: Any,
             feedback: Any) -> dspy.Module:
    import dspy

    k = DEMOS[req.budget]
    if req.optimizer == "bootstrap":
        return dspy.BootstrapFewShot(metric=metric, max_bootstrapped_demos=k, max_labeled_demos=k).compile(
            student, trainset=train
        )
    if req.optimizer == "bootstrap_rs":
        return dspy.BootstrapFewShotWithRandomSearch(
            metric=metric, max_bootstrapped_demos=k, max_labeled_demos=k,
            num_candidate_programs=RANDOM_SEARCH_CANDIDATES[req.budget], num_threads=req.threads,
        ).compile(student, trainset=train, valset=dev)
    if req.optimizer == "mipro":
        return dspy.MIPROv2(
            metric=metric, auto=req.budget, num_threads=req.threads, seed=req.seed,
            max_bootstrapped_demos=k, max_labeled_demos=k, verbose=False,
        ).compile(student, trainset=train, valset=dev)
    return dspy.GEPA(
        metric=feedback, auto=req.budget, reflection_lm=lm, num_threads=req.threads, seed=req.seed,
    ).compile(student, trainset=train, valset=dev)


def _score(service: ExpertService, req: OptimizeRequest, module: dspy.Module, items: list[GoldItem], lm: Any,
           phase: str, progress: Progress, cancel: threading.Event,
           served_by: dict[str, str | None] | None = None) -> list[bool]:
    """Per-item correctness of `module` on `items`, in the order given; `served_by` gets each item's deployment."""
    import dspy

    from sme_mcp.experts.adapter import lm_context

    outcomes: dict[str, bool] = {}
    lock = threading.Lock()
    chain = service.chains[req.goldset]
    chain.take_deployment()  # calls made on this thread before (compiling) are not this phase's

    def metric(example: Any, pred: Any, trace: Any = None) -> float:
        if cancel.is_set():
            raise OptimizationCancelled
        ok = score_item(service.registry.metric(req.goldset), example.gold, pred).correct
        with lock:
            outcomes[example.gold.id] = ok
            if served_by is not None:  # the metric runs on the thread that ran the item
                served_by[example.gold.id] = chain.take_deployment()
            done, right = len(outcomes), sum(outcomes.values())
        progress(phase, done, len(items), right / done)
        return float(ok)

    class AsUsersAreAnswered(dspy.Module):
        """The program scored on the path `ask_expert` and `run_eval` take (the exact math path, the answer
        checks), so the gate measures what the receipts of `run_eval` measure."""

        def __init__(self) -> None:
            super().__init__()
            self.program = module

        def forward(self, question: str) -> dspy.Prediction:
            if req.goldset == ROUTER:
                domain, _, routed_by = service.route(question, router=self.program, lm=lm)
                return dspy.Prediction(domain=domain, routed_by=routed_by)
            answer = service.ask(question, req.goldset, module=self.program, lm=lm)
            return dspy.Prediction(answer=answer.answer, code=answer.code)

    with lm_context(lm):
        dspy.Evaluate(devset=_examples(items), metric=metric, num_threads=req.threads, display_progress=False,
                      max_errors=len(items) + 1, provide_traceback=False)(AsUsersAreAnswered())
    if cancel.is_set():
        raise OptimizationCancelled
    return [outcomes.get(item.id, False) for item in items]


def _side(version: str, outcomes: list[bool]) -> SideScore:
    n, correct = len(outcomes), sum(outcomes)
    low, high = wilson_interval(correct, n)
    return SideScore(version=version, score=round(correct / n, 4) if n else 0.0, correct=correct, n=n,
                     ci_low=round(low, 4), ci_high=round(high, 4))


SELECTING = ("bootstrap_rs", "mipro", "gepa")  # optimizers that choose among candidates on a validation set


def split_dev(optimizer: str, dev: list[GoldItem]) -> tuple[list[GoldItem], list[GoldItem]]:
    """(selection items, gate items): an optimizer that selects on dev does so on its first half, and the gate
    compares on the second, so the gate never judges on the items that chose the candidate."""
    if optimizer not in SELECTING or len(dev) < 2:
        return dev, dev
    half = len(dev) // 2
    return dev[:half], dev[half:]


def should_promote(baseline: SideScore, candidate: SideScore) -> bool:
    """The eval gate: promote only a strictly higher score on the same gate (dev) items."""
    return candidate.n == baseline.n and candidate.score > baseline.score


def run_optimization(
    service: ExpertService,
    req: OptimizeRequest,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    lm_info: dict[str, Any] | None = None,
) -> OptimizeReport:
    """Optimizes one program and applies the promotion gate. See the module docstring.

    Raises:
        GoldsetError: A split is missing or malformed.
        NoBackendError: No LM backend for the role.
        OptimizationCancelled: `cancel` was set; nothing was saved or promoted.
    """
    from sme_mcp.experts.adapter import lm_context

    progress = progress or (lambda *_: None)
    cancel = cancel or threading.Event()
    t0 = time.perf_counter()
    env = environment()
    root = service.settings.goldsets_dir
    if req.goldset not in service.registry.roles:
        raise GoldsetError(f"unknown program {req.goldset!r}; use one of: {', '.join(service.registry.roles)}")
    folder = service.registry.goldset_dir(req.goldset, root)
    metric_name = service.registry.metric(req.goldset)
    train = load_goldset(folder / "train.jsonl", req.train_limit)
    from_usage: list[GoldItem] = []
    if req.from_usage:
        from sme_mcp.optimize.usage_items import curate

        curation = curate(service.usage, root, service.settings.data_dir / "usage_goldsets",
                           more_goldsets=service.registry.declared_goldsets())
        from_usage = curation.items.get(req.goldset, [])
        train = [*train, *from_usage]
    dev = load_goldset(folder / "dev.jsonl", req.dev_limit)
    select, gate = split_dev(req.optimizer, dev)
    # Holdout items an earlier gate chose on (before gates moved to dev) are not reported either.
    chose_before = holdout_items_that_chose(service.settings.receipt_dirs(), req.goldset)
    left_out = sorted({item_id for ids in chose_before.values() for item_id in ids})
    holdout = [item for item in load_goldset(folder / "holdout.jsonl") if item.id not in left_out]
    holdout = holdout[: req.holdout_limit] if req.holdout_limit is not None else holdout
    if not holdout:
        raise GoldsetError(f"every {req.goldset} holdout item chose a program; nothing is left to report")
    lm, served = service.chains[req.goldset].first_available()
    calls_before = len(lm.history)
    metric_calls = 0
    count_lock = threading.Lock()

    def count() -> None:
        nonlocal metric_calls
        with count_lock:
            metric_calls += 1
        progress("compile", metric_calls, 0, None)

    store = service.programs
    active = store.active(req.goldset)
    baseline_module = service.module(req.goldset)
    student = service.build_module(req.goldset)
    progress("compile", 0, 0, None)
    # The router's nearest-neighbour stage would answer every train question itself (they are its
    # examples), leaving the LM stage nothing to learn from: the LM stage is compiled alone, then the
    # first stage is refitted on the current train examples and put back in front of it.
    nearest = getattr(student, "nearest", None) if req.goldset == "router" else None
    if nearest is not None:
        student.use_nearest = False
    with lm_context(lm):
        candidate_module = _compile(
            req, student, _examples(train), _examples(select), lm,
            _plain_metric(metric_name, count, cancel), _feedback_metric(metric_name, count, cancel),
        )
    if nearest is not None:
        learned = [(item.question, str(item.label)) for item in from_usage]  # reported misroutes win collisions
        candidate_module.nearest = nearest.fit([*learned, *service.router_examples()])
        candidate_module.use_nearest = True
    # The gate: both programs on the same dev items. Dev may also have chosen among candidates
    # (random search, MIPROv2, GEPA): it is selection, never the reported score.
    deployments: dict[str, dict[str, str | None]] = {"gate baseline": {}, "gate candidate": {},
                                                     "holdout baseline": {}, "holdout candidate": {}}
    gate_base = _score(service, req, baseline_module, gate, lm, "gate baseline", progress, cancel,
                       deployments["gate baseline"])
    gate_cand = _score(service, req, candidate_module, gate, lm, "gate candidate", progress, cancel,
                       deployments["gate candidate"])
    # The report: both programs on the same holdout items, which chose nothing.
    base_outcomes = _score(service, req, baseline_module, holdout, lm, "holdout baseline", progress, cancel,
                           deployments["holdout baseline"])
    cand_outcomes = _score(service, req, candidate_module, holdout, lm, "holdout candidate", progress, cancel,
                           deployments["holdout candidate"])
    baseline = _side(active.version if active else "base", gate_base)
    b, c, p = mcnemar_exact(gate_base, gate_cand)
    hb, hc, hp = mcnemar_exact(base_outcomes, cand_outcomes)
    progress("saving", 0, 1, None)
    record = store.save(
        req.goldset, candidate_module, holdout_score=None, optimizer=req.optimizer,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    candidate = _side(record.version, gate_cand)
    holdout_baseline, holdout_candidate = _side(baseline.version, base_outcomes), _side(record.version, cand_outcomes)
    promoted = should_promote(baseline, candidate)
    report = OptimizeReport(
        request=req, baseline=baseline, candidate=candidate, delta=round(candidate.score - baseline.score, 4),
        mcnemar={"b": b, "c": c, "p": round(p, 6)}, holdout_baseline=holdout_baseline,
        holdout_candidate=holdout_candidate, holdout_delta=round(holdout_candidate.score - holdout_baseline.score, 4),
        holdout_mcnemar={"b": hb, "c": hc, "p": round(hp, 6)}, promoted=promoted,
        active_version=record.version if promoted else baseline.version, candidate_version=record.version,
        wall_s=round(time.perf_counter() - t0, 1), lm_calls=len(lm.history) - calls_before,
        metric_calls=metric_calls, train_from_usage=len(from_usage),
    )
    receipt = write_receipt(service.settings.receipts_dir, "optimize", req.goldset, {
        "report": report.model_dump(exclude={"receipt"}),
        "lm": {**service.describe_lm(req.goldset), "served_by": served.label, **(lm_info or {})},
        "split_sizes": split_sizes(folder),
        "provenance": {
            "chose": {"train": [item.id for item in train], "dev (selection)": [item.id for item in select],
                      "dev (gate)": [item.id for item in gate]},
            "train_from_usage": {"items": [item.id for item in from_usage],
                                 "usage_entries": [item.source.removeprefix("usage:") for item in from_usage],
                                 "rule": "rated answers from the usage log, deduplicated against every gold-set "
                                         "split; train only"},
            "scored": {"holdout": [item.id for item in holdout]},
            "holdout_left_out": {"items": left_out, "receipts": sorted(chose_before),
                                 "rule": "holdout items an earlier gate chose on are not reported"},
            "rule": "compiled on train; candidates selected on the selection part of dev, the gate decided on "
                    "the gate part (all of dev when nothing selects); holdout only reported",
        },
        "gate_items": [
            {"id": item.id, "baseline": bo, "candidate": co,
             "deployment_baseline": deployments["gate baseline"].get(item.id),
             "deployment_candidate": deployments["gate candidate"].get(item.id)}
            for item, bo, co in zip(gate, gate_base, gate_cand, strict=True)
        ],
        "holdout_items": [
            {"id": item.id, "baseline": bo, "candidate": co,
             "deployment_baseline": deployments["holdout baseline"].get(item.id),
             "deployment_candidate": deployments["holdout candidate"].get(item.id)}
            for item, bo, co in zip(holdout, base_outcomes, cand_outcomes, strict=True)
        ],
    }, env)
    report.receipt = receipt.name
    record = record.model_copy(update={
        "gate_score": candidate.score, "gate_split": GATE_SPLIT, "baseline_score": baseline.score,
        "holdout_score": holdout_candidate.score, "receipt": receipt.name,
    })
    if promoted:
        store.promote(record)
        service.reload(req.goldset)
    else:
        store.set_status(record, "rejected")
    progress("done", 1, 1, candidate.score)
    _log_mlflow(service, report, receipt)
    return report


def _log_mlflow(service: ExpertService, report: OptimizeReport, receipt: Any) -> None:
    if not service.settings.mlflow.enabled:
        return
    import mlflow

    with mlflow.start_run(run_name=f"optimize-{report.request.goldset}-{report.candidate_version}"):
        mlflow.log_params(report.request.model_dump())
        metrics = {"baseline_gate": report.baseline.score, "candidate_gate": report.candidate.score,
                   "delta": report.delta, "mcnemar_p": report.mcnemar["p"], "promoted": float(report.promoted)}
        if report.holdout_baseline is not None and report.holdout_candidate is not None:
            metrics |= {"baseline_holdout": report.holdout_baseline.score,
                        "candidate_holdout": report.holdout_candidate.score}
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(receipt))
