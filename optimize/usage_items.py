"""Train items from use: rated answers in the usage log become candidate train items.

- A confirmed-correct answer becomes a train item of the domain that answered it (or of the
  domain the rating names); a wrong answer with a correction becomes one with the correction as
  its answer. A wrong answer without a correction teaches nothing as an answer and is skipped.
- Code items need tests to be scored: the tests the question states (assert lines, doctests,
  "f(2) -> 4"), and the confirmed or corrected code must pass them in the sandbox.
- A rating that names another domain than the one that answered is a misroute: the question
  becomes a router train item with that label (unless the caller had named the domain itself).

Every item is deduplicated (normalized text) against every split of every gold set and against
the other items from use (the newest rating wins). Items from use are only ever train items:
never dev, never holdout. They are written apart from the shipped gold sets, under the data dir
(`usage_goldsets/<gold set>/train.jsonl`), and each one names its usage entry (`source`).

Example:
    >>> curation = curate(service.usage, settings.goldsets_dir, settings.data_dir / "usage_goldsets")
    >>> [item.source for item in curation.items["router"]]
    ['usage:u-3f9a0c1d2b4e5f60']
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field

from sme_mcp.experts.usage_log import UsageEntry, UsageLog
from sme_mcp.optimize.goldsets import GOLDSETS, GoldItem, GoldsetError, load_goldset
from sme_mcp.tools.files import atomic_write_text
from sme_mcp.tools.markdown import strip_fences

USAGE_SOURCE = "usage:"
ROUTED = ("nearest_neighbours", "router", "router_fallback")  # routes the router chose (not the caller, not SymPy)


class Skipped(BaseModel):
    entry_id: str
    goldset: str
    reason: str


class Curation(BaseModel):
    """The train items from use per gold set, and the rated entries that gave none, with why."""

    items: dict[str, list[GoldItem]] = Field(default_factory=lambda: {name: [] for name in GOLDSETS})
    skipped: list[Skipped] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict, description="Where each gold set's items were written")

    def entry_ids(self, goldset: str) -> list[str]:
        return [item.source.removeprefix(USAGE_SOURCE) for item in self.items.get(goldset, [])]


def normalized(text: str) -> str:
    """Text as compared for duplicates: case-folded, punctuation and spacing removed."""
    return " ".join(re.sub(r"[^\w]+", " ", text.casefold()).split())


def gold_questions(goldsets_dir: Path, more: dict[str, Path] | None = None) -> dict[str, str]:
    """Normalized question -> "gold set/file" for every split file of every gold set (`more`: declared
    experts' gold-set folders by name)."""
    seen: dict[str, str] = {}
    folders = {name: goldsets_dir / name for name in GOLDSETS} | (more or {})
    for name, folder in folders.items():
        for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
            try:
                items = load_goldset(path)
            except GoldsetError:
                continue
            for item in items:
                seen.setdefault(normalized(item.question), f"{name}/{path.name}")
    return seen


def _code_item(entry: UsageEntry, text: str, item_id: str) -> tuple[GoldItem | None, str | None]:
    from sme_mcp.experts.code_expert import tests_from_question
    from sme_mcp.optimize.metrics import code_passes

    tests = tests_from_question(entry.question)
    if not tests:
        return None, ("a code item needs tests and the question states none; ask again with assert lines "
                      "(or 'f(2) -> 4' examples) in the question and rate that answer")
    code = strip_fences(text)
    passed, detail = code_passes(code, tests)
    if not passed:
        return None, f"the {'confirmed' if entry.rating and entry.rating.verdict == 'correct' else 'corrected'} " \
                     f"code fails the question's own tests ({detail[:200]})"
    return GoldItem(id=item_id, domain="code", question=entry.question, answer=code, tests=tests,
                    source=f"{USAGE_SOURCE}{entry.id}"), None


def _expert_item(entry: UsageEntry) -> tuple[str | None, GoldItem | None, str | None]:
    """(gold set, item, why not) for the answer part of a rated entry."""
    rating = entry.rating
    assert rating is not None
    goldset = rating.domain or entry.domain
    if goldset not in ("math", "code", "general"):
        return None, None, "no expert answered it and the rating names no domain"
    if rating.verdict == "correct":
        if entry.error is not None or not entry.answer:
            return goldset, None, "rated correct, but the question failed and has no answer to learn from"
        text = entry.answer
    elif rating.correction:
        text = rating.correction
    else:
        return goldset, None, "rated wrong without a correction: nothing to learn as an answer"
    item_id = f"usage-{entry.id}"
    if goldset == "code":
        item, why = _code_item(entry, text, item_id)
        return goldset, item, why
    source = f"{USAGE_SOURCE}{entry.id}"
    if goldset == "math":
        return goldset, GoldItem(id=item_id, domain="math", question=entry.question, answer=text, source=source), None
    return goldset, GoldItem(id=item_id, domain="general", question=entry.question, answer=text, answers=[text],
                             source=source), None


def _router_item(entry: UsageEntry) -> tuple[GoldItem | None, str | None]:
    rating = entry.rating
    assert rating is not None
    if rating.domain is None or rating.domain == entry.domain:
        return None, None  # not a misroute: nothing for the router
    if entry.routed_by not in ROUTED:
        how = "the caller named the domain" if entry.asked_domain else f"it was answered by {entry.routed_by}"
        return None, f"not routed by the router ({how}), so the router has nothing to learn from it"
    return GoldItem(id=f"usage-{entry.id}-route", domain="router", question=entry.question, label=rating.domain,
                    source=f"{USAGE_SOURCE}{entry.id}"), None


def curate(usage: UsageLog, goldsets_dir: Path, out_dir: Path | None = None,
           more_goldsets: dict[str, Path] | None = None) -> Curation:
    """The train items from the usage log's ratings, written under `out_dir` when given.

    Args:
        usage: The usage log.
        goldsets_dir: The shipped gold sets every item is checked against (all splits).
        out_dir: Where `<gold set>/train.jsonl` files go (rewritten whole each time); None: not written.
        more_goldsets: The gold-set folders of declared experts, by name, checked like the shipped ones.
    """
    gold = gold_questions(goldsets_dir, more_goldsets)
    curation = Curation()
    taken: set[tuple[str, str]] = set()
    for entry in reversed(usage.rated()):  # newest first: a later rating of the same question wins
        key = normalized(entry.question)
        candidates: list[tuple[str | None, GoldItem | None, str | None]] = [_expert_item(entry)]
        router_item, router_why = _router_item(entry)
        if router_item is not None or router_why is not None:
            candidates.append(("router", router_item, router_why))
        for goldset, item, why in candidates:
            name = goldset or "none"
            if item is None:
                if why:
                    curation.skipped.append(Skipped(entry_id=entry.id, goldset=name, reason=why))
                continue
            if key in gold:
                curation.skipped.append(Skipped(entry_id=entry.id, goldset=name,
                                                reason=f"the question is already in the gold set {gold[key]}"))
            elif (name, key) in taken:
                curation.skipped.append(Skipped(entry_id=entry.id, goldset=name,
                                                reason="a newer rating of the same question is used instead"))
            else:
                taken.add((name, key))
                curation.items.setdefault(name, []).append(item)
    for name in curation.items:
        curation.items[name].reverse()  # oldest first, as the log has them
    if out_dir is not None:
        for name, items in curation.items.items():
            path = out_dir / name / "train.jsonl"
            if items or path.exists():
                atomic_write_text(path, "".join(item.model_dump_json() + "\n" for item in items))
                curation.files[name] = str(path)
    return curation
