"""`rate_answer`: a user's verdict on a logged answer, and what the experts learn from it at once.

The rating goes into the usage log. A rating that names another domain than the one that
answered a routed question is a misroute, and the router's first stage is refitted right away
(optimize/router_refit.py, no LM call). Everything else waits for the next
`optimize_domain --from-usage`, which trains on the curated items (optimize/usage_items.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from sme_mcp.experts.usage_log import UsageEntry
from sme_mcp.optimize.router_refit import RefitReport, refit_router
from sme_mcp.optimize.usage_items import ROUTED

if TYPE_CHECKING:
    from sme_mcp.experts.service import ExpertService


class RateResult(BaseModel):
    entry: UsageEntry
    router_refit: RefitReport | None = Field(
        default=None, description="The router's refit from this misroute, with its dev gate and receipt"
    )
    next_step: str = Field(description="What happens with the rating now")


def rate_answer(service: ExpertService, entry_id: str, verdict: str, correction: str | None = None,
                domain: str | None = None) -> RateResult:
    """Rates a logged answer; a reported misroute of a routed question refits the router at once.

    Args:
        service: The expert service (its usage log, router and program store).
        entry_id: The answer's id (`id` in the ask_expert answer).
        verdict: "correct" or "wrong".
        correction: The right answer, for a wrong one (code: the right code).
        domain: The domain the question belonged to, when it went to the wrong expert.

    Raises:
        UsageError: The id is malformed or unknown, the log is off, or an argument is not acceptable.

    Example:
        >>> rate_answer(service, answer.id, "wrong", domain="code").router_refit.promoted
        True
    """
    entry = service.usage.rate(entry_id, verdict, correction, domain, domains=service.registry.names)
    misroute = domain is not None and domain != entry.domain
    refit = None
    if misroute and entry.routed_by in ROUTED:
        refit = refit_router(service)
        learned = next((r for r in refit.learned if r.entry_id == entry.id), None) if refit else None
        if refit is None:
            step = "the active router has no nearest-neighbour stage; the misroute is used by the next router " \
                   "optimization with --from-usage"
        elif learned is None:
            step = "the question is already a router gold-set question, so the router was not refitted on it"
        elif refit.promoted:
            step = f"the router was refitted and promoted as {refit.active_version}: this question now routes to " \
                   f"{learned.after}"
        else:
            step = f"the router was refitted but not promoted ({refit.reason})"
    elif misroute:
        how = "the caller named the domain" if entry.asked_domain else f"it was answered by {entry.routed_by}"
        step = f"noted; the router did not choose this expert ({how}), so it has nothing to refit"
    elif verdict == "correct" or correction:
        target = domain or entry.domain
        step = (f"noted as a candidate {target} train item: optimize_domain with from_usage trains on it"
                + (" if the question states tests (code items are scored by running them)" if target == "code"
                   else ""))
    else:
        step = "noted; add a correction to make it a train item"
    return RateResult(entry=entry, router_refit=refit, next_step=step)
