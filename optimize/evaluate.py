"""`run_eval`: scores the active program on a gold set with `dspy.Evaluate`, and writes a receipt."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from sme_mcp.experts.answer import Verification
from sme_mcp.experts.answer_trace import AnswerCancelled, AnswerCost, AnswerTrace
from sme_mcp.experts.lm import NoBackendError
from sme_mcp.experts.registry import ROUTER
from sme_mcp.optimize.goldsets import GoldItem, GoldsetError, Split, load_goldset, split_sizes
from sme_mcp.optimize.receipts import environment, write_receipt
from sme_mcp.optimize.scoring import score_item
from sme_mcp.optimize.selection import holdout_items_that_chose
from sme_mcp.optimize.stats import wilson_interval
from sme_mcp.tools.errors import SmeError

if TYPE_CHECKING:
    from sme_mcp.experts.service import ExpertService

Progress = Callable[[int, int, int], None]  # (done, total, correct so far)


class EvalCancelled(SmeError):
    """The evaluation was cancelled; nothing was written, unless a partial receipt was asked for.

    Attributes:
        receipt: The partial receipt's file name, when one was written.
    """

    def __init__(self, message: str, receipt: str | None = None):
        super().__init__(message)
        self.receipt = receipt


class ResumeMismatch(SmeError):
    """A partial receipt cannot be resumed by this run: it says what differs and what to do."""


class ItemResult(BaseModel):
    id: str
    correct: bool
    f1: float | None = None
    latency_s: float
    prediction: str = Field(description="The answer (or code, or routed domain), truncated")
    detail: str | None = Field(default=None, description="Why it failed, or the error it raised")
    routed_by: str | None = Field(default=None, description="How the router decided (router gold set)")
    cost: AnswerCost | None = Field(default=None, description="LM calls, tokens and seconds per stage")
    deployment: str | None = Field(default=None, description="The LM deployment (e.g. a local replica) that served it")
    verification: Verification | None = Field(
        default=None, description="What the expert checked before answering (tests run, check, grounding) and how "
        "that came out, as the user saw it",
    )


class OutcomeTally(BaseModel):
    """How the items whose verification came out one way were scored: does the label mean anything?"""

    n: int
    correct: int
    seconds_p50: float | None = Field(default=None, description="Median seconds the verification took")


class EvalReport(BaseModel):
    goldset: str
    split: str
    path: str
    n: int
    excluded: int = Field(default=0, description="Holdout items left out because they chose a program (gate items)")
    correct: int
    score: float
    ci_low: float = Field(description="Wilson 95 % interval, lower bound")
    ci_high: float
    mean_f1: float | None = None
    threshold: float | None
    passed: bool | None = Field(description="score >= threshold (None when no threshold applies)")
    failures: list[ItemResult] = Field(description="A sample of failed items")
    lm: dict[str, Any]
    program_version: str | None
    started_at: str
    wall_s: float
    complete: bool = Field(default=True, description="False: stopped early; n of `planned` items were scored")
    planned: int | None = Field(default=None, description="Items the run was asked to score")
    verification: dict[str, OutcomeTally] | None = Field(
        default=None, description="Per verification outcome (e.g. passed, failed, grounded), the items with it and "
        "how many were right; None when the expert reports no verification",
    )
    resumed_from: list[str] = Field(
        default_factory=list, description="Partial receipts whose items this run kept instead of scoring them again "
        "(same commit, program, settings and model)",
    )
    receipt: str | None = None


def tally_verification(results: list[ItemResult]) -> dict[str, OutcomeTally] | None:
    """Items per verification outcome, how many of them were right, and the median seconds the check took.

    Example:
        >>> from sme_mcp.experts.answer import Verification
        >>> v = Verification(method="tests", outcome="passed", checked="ran 2 tests", seconds=0.5)
        >>> items = [ItemResult(id="a", correct=True, latency_s=1.0, prediction="x", verification=v),
        ...          ItemResult(id="b", correct=False, latency_s=1.0, prediction="y")]
        >>> tally_verification(items)["passed"].correct, sorted(tally_verification(items))
        (1, ['none', 'passed'])
    """
    groups: dict[str, list[ItemResult]] = {}
    for r in results:
        groups.setdefault(r.verification.outcome if r.verification else "none", []).append(r)
    if set(groups) == {"none"}:
        return None
    tallies = {}
    for outcome, group in sorted(groups.items()):
        seconds = sorted(r.verification.seconds for r in group if r.verification and r.verification.seconds is not None)
        tallies[outcome] = OutcomeTally(n=len(group), correct=sum(r.correct for r in group),
                                        seconds_p50=seconds[len(seconds) // 2] if seconds else None)
    return tallies


def _resumable(path: Path, expected: dict[str, Any]) -> tuple[dict[str, ItemResult], float, list[str]]:
    """The scored items of a partial receipt that this run may keep, its wall seconds and the receipts behind it.

    A receipt is resumable only by a run of the same code (clean checkout at its commit), gold set, split or
    file, limit, program version, expert settings and model file: then its items are what this run would
    have measured, and the resumed receipt reports one program.

    Raises:
        ResumeMismatch: The file is not a partial eval receipt, or it differs from this run; the message
            names each difference.
    """
    import json

    try:
        body = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ResumeMismatch(f"cannot read the receipt to resume {path}: {exc}") from exc
    report = body.get("report") if isinstance(body, dict) else None
    if not isinstance(report, dict) or body.get("kind") != "eval":
        raise ResumeMismatch(f"{path} is not an eval receipt; pass a receipts/eval-*.json file")
    if report.get("complete", True):
        raise ResumeMismatch(f"{path} is complete: there is nothing left to score")
    found = {
        "git commit": body.get("git_commit"), "gold set": report.get("goldset"), "split": report.get("split"),
        "gold-set file": report.get("path"), "limit": body.get("limit"),
        "program version": report.get("program_version"), "expert settings": body.get("expert_settings") or {},
        "model file": (report.get("lm") or {}).get("model_sha256"),
    }
    differs = [f"{key}: receipt {found[key]!r}, this run {value!r}" for key, value in expected.items()
               if found[key] != value and not (key == "model file" and (found[key] is None or value is None))]
    commit = str(expected["git commit"] or "")
    if not commit or commit.endswith("-dirty"):
        differs.insert(0, f"this checkout ({commit or 'no git commit'}) has uncommitted changes: a resumed receipt "
                          "must name the code that scored every item; commit or stash them, or check out "
                          f"{found['git commit']} in a clean worktree")
    if differs:
        raise ResumeMismatch(f"cannot resume {Path(path).name}: " + "; ".join(differs))
    items = {item["id"]: ItemResult.model_validate(item) for item in body.get("items", [])}
    return items, float(report.get("wall_s") or 0.0), [*report.get("resumed_from", []), Path(path).name]


def _expert_settings(service: ExpertService, goldset: str) -> dict[str, Any]:
    """The settings that shape the scored expert's answers beyond its program and LM (its declaration says)."""
    if goldset == ROUTER:
        return {}
    return service.registry.get(goldset).settings_for_receipt(service)


def _prediction_text(goldset: str, pred: Any) -> str:
    field = {"router": "domain", "code": "code"}.get(goldset, "answer")
    return str(getattr(pred, field, "") or "")[:2000]


def run_eval(
    service: ExpertService,
    goldset: str,
    split: Split = "holdout",
    path: Path | None = None,
    limit: int | None = None,
    threads: int = 1,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    lm_info: dict[str, Any] | None = None,
    write: bool = True,
    keep_partial: bool = False,
    resume: Path | None = None,
) -> tuple[EvalReport, list[ItemResult]]:
    """Evaluates the active program of `goldset` (an expert domain or `router`).

    Each item runs through the same path `ask_expert` uses (fast path, LM chain, active compiled
    program), so the score is what users get.

    Args:
        service: The shared expert service.
        goldset: `math`, `code`, `general` or `router`.
        split: Which split to score (ignored when `path` is given).
        path: Any JSONL file in the gold-set format, instead of the committed split.
        limit: Score only the first `limit` items (after leaving out holdout items that chose a program).
        threads: Items evaluated at once (match the local server's parallel slots).
        progress: Called as items finish, with (done, total, correct).
        cancel: When set, remaining items are skipped and `EvalCancelled` is raised; no receipt unless
            `keep_partial`. Ctrl-C (KeyboardInterrupt) counts as cancellation.
        lm_info: Model file, sha256 etc. of the serving backend, recorded in the receipt.
        write: Write a receipt to the settings' receipts dir.
        keep_partial: On cancellation, still write a receipt of the items scored so far, marked
            `complete: false` (a long run stopped by hand keeps what it measured).
        resume: A partial receipt of this very run (same commit, clean checkout, gold set, split, limit,
            program, settings and model): its items are kept and only the rest are scored; the new receipt
            holds them all and names it in `resumed_from`.

    Raises:
        GoldsetError: Unknown gold set or a missing/malformed file.
        NoBackendError: No LM backend could answer (raised instead of recording a zero score).
        EvalCancelled: `cancel` was set.
        ResumeMismatch: `resume` is not a partial receipt of this run.
    """
    import dspy

    if goldset not in service.registry.roles:
        raise GoldsetError(f"unknown gold set {goldset!r}; use one of: {', '.join(service.registry.roles)}")
    source = path or service.registry.goldset_dir(goldset, service.settings.goldsets_dir) / f"{split}.jsonl"
    metric_name = service.registry.metric(goldset)
    items = load_goldset(source)
    excluded: dict[str, list[str]] = {}
    chose: set[str] = set()
    if path is None and split == "holdout":
        # Holdout items that chose a program (gates before they moved to dev) never count in its score.
        excluded = holdout_items_that_chose(service.settings.receipt_dirs(), goldset)
        chose = {item_id for ids in excluded.values() for item_id in ids}
        items = [item for item in items if item.id not in chose]
        if not items:
            raise GoldsetError(f"every {goldset} holdout item chose a program; nothing is left to score")
    items = items[:limit] if limit is not None else items
    cancel = cancel or threading.Event()
    fatal: list[BaseException] = []
    lock = threading.Lock()
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.perf_counter()
    env = environment() if write else None
    # The version is the one loaded for this run: a program promoted (or seeded from compiled/)
    # while the run is going on must not be credited with its score.
    program_version = service.program_version(goldset)
    prior: dict[str, ItemResult] = {}
    prior_wall, resumed_from = 0.0, []
    if resume is not None:
        from sme_mcp.optimize.receipts import git_commit

        prior, prior_wall, resumed_from = _resumable(resume, {
            "git commit": (env or {}).get("git_commit") or git_commit(), "gold set": goldset,
            "split": split if path is None else "custom", "gold-set file": str(source), "limit": limit,
            "program version": program_version, "expert settings": _expert_settings(service, goldset),
            "model file": (lm_info or {}).get("model_sha256"),
        })
        prior = {item.id: prior[item.id] for item in items if item.id in prior}
    results: dict[str, ItemResult] = dict(prior)

    class Served(dspy.Module):
        """Runs one item through the service; never raises, so Evaluate sees every item."""

        def forward(self, question: str) -> dspy.Prediction:
            if cancel.is_set():
                return dspy.Prediction(skipped=True)
            t = time.perf_counter()
            trace = AnswerTrace(cancel=cancel)
            try:
                if goldset == "router":
                    domain, confidence, routed_by = service.route(question, trace)
                    pred = dspy.Prediction(domain=domain, confidence=confidence, routed_by=routed_by,
                                           cost=trace.cost())
                else:
                    answer = service.ask(question, goldset, trace=trace)
                    pred = dspy.Prediction(answer=answer.answer, code=answer.code, cost=answer.cost,
                                           deployment=getattr(answer, "deployment", None),
                                           verification=getattr(answer, "verification", None))
            except NoBackendError as exc:
                fatal.append(exc)
                cancel.set()
                return dspy.Prediction(skipped=True)
            except AnswerCancelled:  # the run was cancelled mid-item: the item is not scored
                return dspy.Prediction(skipped=True)
            except Exception as exc:  # a failed item scores 0 and its error goes in the receipt
                pred = dspy.Prediction(error=f"{type(exc).__name__}: {str(exc)[:300]}", cost=trace.cost())
            pred.latency_s = time.perf_counter() - t
            return pred

    def metric(example: dspy.Example, pred: dspy.Prediction, trace: Any = None) -> float:
        if getattr(pred, "skipped", False):
            return 0.0
        item: GoldItem = example.gold
        error = getattr(pred, "error", None)
        scored = score_item(metric_name, item, pred) if error is None else None
        # An errored general item has F1 0.0, so mean_f1 is over every item, not only the ones that answered.
        f1 = scored.f1 if scored else (0.0 if metric_name in ("exact_f1", "exact", "token_f1") else None)
        result = ItemResult(
            id=item.id, correct=bool(scored and scored.correct), f1=f1,
            latency_s=round(float(getattr(pred, "latency_s", 0.0)), 3), prediction=_prediction_text(goldset, pred),
            detail=error or (scored.detail if scored else None), routed_by=getattr(pred, "routed_by", None),
            cost=getattr(pred, "cost", None), deployment=getattr(pred, "deployment", None),
            verification=getattr(pred, "verification", None),
        )
        with lock:
            results[item.id] = result
            done, right = len(results), sum(r.correct for r in results.values())
        if progress is not None:
            progress(done, len(items), right)
        return float(result.correct)

    devset = [dspy.Example(question=item.question, gold=item).with_inputs("question")
              for item in items if item.id not in prior]
    evaluator = dspy.Evaluate(
        devset=devset, metric=metric, num_threads=max(1, threads), display_progress=False,
        max_errors=len(devset) + 1, provide_traceback=False,
    )
    try:
        if devset:  # a resumed run may find every item scored
            evaluator(Served())
    except KeyboardInterrupt:
        cancel.set()
    if fatal:
        raise fatal[0]
    if cancel.is_set():
        message = f"evaluation of {goldset} cancelled after {len(results)} of {len(items)} items"
        if not (keep_partial and write and results):
            raise EvalCancelled(message)
    complete = not cancel.is_set()

    ordered = [results[item.id] for item in items if item.id in results]
    correct = sum(r.correct for r in ordered)
    n = len(ordered)
    low, high = wilson_interval(correct, n)
    f1s = [r.f1 for r in ordered if r.f1 is not None]
    threshold = service.registry.threshold(goldset, service.settings.eval_thresholds) if path is None else None
    score = correct / n if n else 0.0
    report = EvalReport(
        goldset=goldset, split=split if path is None else "custom", path=str(source), n=n,
        excluded=len(chose), correct=correct,
        score=round(score, 4), ci_low=round(low, 4), ci_high=round(high, 4),
        mean_f1=round(sum(f1s) / len(f1s), 4) if f1s else None, threshold=threshold,
        passed=None if threshold is None else score >= threshold,
        failures=[r for r in ordered if not r.correct][:5],
        lm={**service.describe_lm(goldset), **(lm_info or {})},
        program_version=program_version, started_at=started,
        wall_s=round(prior_wall + time.perf_counter() - t0, 2), complete=complete, planned=len(items),
        verification=tally_verification(ordered), resumed_from=resumed_from,
    )
    if write:
        payload = {
            "report": report.model_dump(exclude={"failures", "receipt"}),
            "split_sizes": split_sizes(service.registry.goldset_dir(goldset, service.settings.goldsets_dir))
            if path is None else None,
            "threads": threads, "limit": limit,
            "expert_settings": _expert_settings(service, goldset),
            "excluded": {
                "rule": "holdout items that chose a program of this gold set (its gate items) are not scored",
                "items": sorted(chose),
                "receipts": sorted(excluded),
            },
            "items": [r.model_dump() for r in ordered],
        }
        receipt = write_receipt(service.settings.receipts_dir, "eval", f"{goldset}-{report.split}", payload, env)
        report.receipt = receipt.name
    if not complete:
        raise EvalCancelled(f"{message}; partial receipt {report.receipt}", receipt=report.receipt)
    return report, ordered
