"""`refit_router`: the router learns from misroutes at once, with no LM call.

The router's first stage is a nearest-neighbour vote over known questions (experts/router_stage.py).
A question a user rated as misrouted becomes a known question with the label the user gave, and a
known question asked again routes by its own label. Refitting is re-embedding a few questions, so
it happens as soon as the rating arrives.

The gate is the same as for any program, without the LM: the refitted stage votes on every router
dev question, and the new version is promoted only if it gets no fewer of them right, and decides
no more of them wrongly, than the active one. The receipt (`refit-router-*.json`) lists the usage
entries it learned from, both programs' dev votes, and how each rated question routes before and
after.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from sme_mcp.optimize.goldsets import goldset_path, load_goldset
from sme_mcp.optimize.receipts import environment, write_receipt
from sme_mcp.optimize.usage_items import curate

if TYPE_CHECKING:
    from sme_mcp.experts.router_stage import NearestNeighbourStage
    from sme_mcp.experts.service import ExpertService

GATE_SPLIT = "dev (nearest-neighbour vote, no LM)"
_refit_lock = threading.Lock()  # two ratings at once must not both save "the next version"


class VoteScore(BaseModel):
    n: int
    correct: int = Field(description="Dev questions whose vote names the gold label")
    decided: int = Field(description="Votes clear enough to route without the LM")
    decided_wrong: int = Field(description="Votes that would route to the wrong expert without asking the LM")

    @property
    def accuracy(self) -> float:
        return round(self.correct / self.n, 4) if self.n else 0.0


class LearnedRoute(BaseModel):
    entry_id: str
    question: str
    label: str
    before: str | None = Field(description="The active router's vote before the refit (label, or None)")
    after: str | None
    decided_after: bool


class RefitReport(BaseModel):
    learned: list[LearnedRoute]
    dev_before: VoteScore
    dev_after: VoteScore
    promoted: bool
    reason: str
    active_version: str
    candidate_version: str | None = None
    receipt: str | None = None
    seconds: float


def _dev_votes(stage: NearestNeighbourStage, dev: list[Any], vectors: Any) -> VoteScore:
    votes = stage.votes([item.question for item in dev], vectors)
    return VoteScore(
        n=len(dev),
        correct=sum(1 for v, item in zip(votes, dev, strict=True) if v is not None and v.label == item.label),
        decided=sum(1 for v in votes if v is not None and v.decided),
        decided_wrong=sum(1 for v, item in zip(votes, dev, strict=True)
                          if v is not None and v.decided and v.label != item.label),
    )


def refit_router(service: ExpertService) -> RefitReport | None:
    """Refits the router's first stage on its known questions plus every misroute users reported.

    Returns None when there is nothing to refit: no rating names a misroute, or the active router
    has no nearest-neighbour stage.
    """
    settings = service.settings
    with _refit_lock:
        t0 = time.perf_counter()
        curation = curate(service.usage, settings.goldsets_dir, settings.data_dir / "usage_goldsets",
                           more_goldsets=service.registry.declared_goldsets())
        routes = curation.items["router"]
        active_module = service.module("router")
        active_stage = getattr(active_module, "nearest", None)
        if not routes or active_stage is None or not getattr(active_module, "use_nearest", False):
            return None
        active = service.programs.active("router")
        active_version = active.version if active else "base"
        active_stage.warm()  # its vectors (from the disk cache) pass to the copy, which then embeds only new questions
        candidate = copy.deepcopy(active_module)
        learned_examples = [(item.question, str(item.label)) for item in routes]
        # Reported misroutes first: where a user's label and a known question's collide, the user wins.
        candidate.nearest.fit([*learned_examples, *service.router_examples()])
        dev = load_goldset(goldset_path(settings.goldsets_dir, "router", "dev"))
        vectors = active_stage.embed_questions([item.question for item in dev])  # once, for both programs
        before, after = _dev_votes(active_stage, dev, vectors), _dev_votes(candidate.nearest, dev, vectors)
        learned = []
        asked = [question for question, _ in learned_examples]
        asked_vectors = active_stage.embed_questions(asked)
        olds, news = active_stage.votes(asked, asked_vectors), candidate.nearest.votes(asked, asked_vectors)
        for item, (question, label), old, new in zip(routes, learned_examples, olds, news, strict=True):
            learned.append(LearnedRoute(
                entry_id=item.source.removeprefix("usage:"), question=question, label=label,
                before=old.label if old else None, after=new.label if new else None,
                decided_after=bool(new and new.decided),
            ))
        promoted = after.correct >= before.correct and after.decided_wrong <= before.decided_wrong
        reason = ("no dev question routes worse" if promoted else
                  f"the refit routes dev worse ({after.correct}/{after.n} right and {after.decided_wrong} decided "
                  f"wrongly, against {before.correct}/{before.n} and {before.decided_wrong}); kept {active_version}")
        record = service.programs.save(
            "router", candidate, optimizer="refit_from_usage",
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        report = RefitReport(learned=learned, dev_before=before, dev_after=after, promoted=promoted, reason=reason,
                             active_version=record.version if promoted else active_version,
                             candidate_version=record.version, seconds=0.0)
        report.seconds = round(time.perf_counter() - t0, 3)
        receipt = write_receipt(settings.receipts_dir, "refit", "router", {
            "report": report.model_dump(exclude={"receipt"}),
            "baseline_version": active_version,
            "provenance": {
                "chose": {"dev": [item.id for item in dev]},
                "learned_from_usage": [route.entry_id for route in learned],
                "rule": "known questions refitted with the misroutes users reported; promoted only if the vote on "
                        "every router dev question is right no less often and decides wrongly no more often",
            },
        }, environment())
        report.receipt = receipt.name
        record = record.model_copy(update={
            "gate_score": after.accuracy, "gate_split": GATE_SPLIT, "baseline_score": before.accuracy,
            "receipt": receipt.name,
        })
        if promoted:
            service.programs.promote(record)
            service.reload("router")
        else:
            service.programs.set_status(record, "rejected")
        return report
