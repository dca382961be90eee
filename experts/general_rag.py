"""`RetrievalGeneralExpert`: retrieve passages from the document index, then answer from them."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from typing import Any

import dspy

log = logging.getLogger(__name__)

# A search takes (question, k) and returns hits with `text`, `source` and `title` (attributes or keys),
# e.g. `lambda q, k: index.search("demo", q, k)` over a `sme_mcp.tools.doc_index.DocumentIndex`.
Search = Callable[[str, int], Sequence[Any]]


class AnswerWithContext(dspy.Signature):
    """Answer the question accurately. Use the context passages when they are relevant; otherwise, or
    when there are none, answer from your own knowledge. Reply with the answer itself (a name, number,
    date or short phrase), not a full sentence."""

    context: list[str] = dspy.InputField(desc="retrieved passages, possibly irrelevant; may be empty")
    question: str = dspy.InputField()
    answer: str = dspy.OutputField(desc="the answer only, e.g. 'Real Madrid' or '1969'")


class RetrievalGeneralExpert(dspy.Module):
    """Retrieve-then-answer: the top `k` passages of `search` feed a ChainOfThought.

    The prediction carries `answer`, `reasoning` and `sources`: the distinct `{"source", "title"}`
    of the passages shown to the model, in rank order (empty when nothing relevant was retrieved).

    Args:
        search: Returns the best hits for a question; a failing search is logged and treated as no hits.
        k: Passages to retrieve; 0 answers closed-book.
        min_similarity: Hits with a `similarity` (query-passage cosine) below this are dropped: a small
            model given off-topic passages answers worse than with none.
    """

    def __init__(self, search: Search, k: int = 3, min_similarity: float | None = None) -> None:
        super().__init__()
        self.search = search
        self.k = k
        self.min_similarity = min_similarity
        # Not named `respond` like GeneralExpert's predictor: DSPy loads saved signatures by field position,
        # so a GeneralExpert program would load silently mislabelled; a new name makes that a KeyError.
        self.generate_answer = dspy.ChainOfThought(AnswerWithContext)

    def forward(self, question: str) -> dspy.Prediction:
        hits: list[Any] = []
        if self.k > 0:
            try:
                hits = list(self.search(question, self.k))[: self.k]
            except Exception as exc:  # retrieval is an aid: without it the question is still answered
                log.warning("retrieval failed (%s); answering without context", exc)
        if self.min_similarity is not None:
            hits = [h for h in hits if _similarity(h) is None or _similarity(h) >= self.min_similarity]
        context = [f"{_field(h, 'title')}: {_field(h, 'text')}" for h in hits]
        pred = self.generate_answer(context=context, question=question)
        sources: list[dict[str, str]] = []
        for hit in hits:
            entry = {"source": _field(hit, "source"), "title": _field(hit, "title")}
            if entry not in sources:
                sources.append(entry)
        return dspy.Prediction(answer=pred.answer, reasoning=pred.reasoning, sources=sources)

    def __deepcopy__(self, memo: dict[int, Any]) -> RetrievalGeneralExpert:
        # Optimizers deep-copy programs; the search holds open index handles and locks, so copies share it.
        memo[id(self.search)] = self.search
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new


def _similarity(hit: Any) -> float | None:
    value = hit.get("similarity") if isinstance(hit, dict) else getattr(hit, "similarity", None)
    return None if value is None else float(value)


def _field(hit: Any, name: str) -> str:
    value = hit.get(name) if isinstance(hit, dict) else getattr(hit, name, None)
    return "" if value is None else str(value)
