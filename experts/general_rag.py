"""`RetrievalGeneralExpert`: retrieve passages from the document index, then answer from them."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import dspy

from sme_mcp.experts.grounding import grounding_with_evidence, repeats_question

log = logging.getLogger(__name__)

# A search takes (question, k) and returns hits with `text`, `source` and `title` (attributes or keys),
# e.g. `lambda q, k: index.search("demo", q, k)` over a `sme_mcp.tools.doc_index.DocumentIndex`.
Search = Callable[[str, int], Sequence[Any]]


def retrieve_context(search: Search, question: str, k: int, min_similarity: float | None = None,
                     pool: int = 0, keep_sentences: int = 0,
                     sentence_window: int = 1) -> tuple[list[str], list[dict[str, str]]]:
    """The passages to show the model for `question`, and the distinct sources they came from.

    Retrieval is an aid: a failing search is logged and treated as no hits, so the question is still
    answered. Hits with a `similarity` below `min_similarity` are dropped (a small model given
    off-topic passages answers worse than with none). With a `pool` larger than `k`, that many hits
    are searched and the best `k` of them shown, in `experts.rerank.fused_order`. With `keep_sentences`,
    each passage is cut to its sentences about the question (`experts.context_window.sentence_window`).

    Args:
        search: Returns the best hits for a question: `text`, `source`, `title` and optionally
            `similarity`, as attributes or keys.
        question: The question.
        k: Passages to show; 0 retrieves nothing.
        min_similarity: The floor of a hit's similarity; None keeps every hit.
        pool: Hits to search before reordering (the `retrieval_pool` setting); `k` or less: the
            search's own order.
        keep_sentences: Best sentences kept per passage (the `retrieval_keep_sentences` setting); 0: whole
            passages.
        sentence_window: Sentences kept either side of each of those (`retrieval_sentence_window`).

    Returns:
        `("title: text"` per kept hit, in rank order; the distinct `{"source", "title"}` of those hits`)`.

    Example:
        >>> hits = [{"title": "Moon", "text": "Apollo 11 landed in 1969.", "source": "moon.md", "similarity": 0.8},
        ...         {"title": "Cats", "text": "Cats purr.", "source": "cats.md", "similarity": 0.1}]
        >>> retrieve_context(lambda q, k: hits, "When did Apollo 11 land?", 3, min_similarity=0.3)
        (['Moon: Apollo 11 landed in 1969.'], [{'source': 'moon.md', 'title': 'Moon'}])
    """
    hits: list[Any] = []
    if k > 0:
        try:
            hits = list(search(question, max(k, pool)))[: max(k, pool)]
        except Exception as exc:  # retrieval is an aid: without it the question is still answered
            log.warning("retrieval failed (%s); answering without context", exc)
    if min_similarity is not None:
        hits = [h for h in hits if _similarity(h) is None or _similarity(h) >= min_similarity]  # type: ignore[operator]
    if pool > k and len(hits) > 1:
        from sme_mcp.experts.rerank import fused_order

        order = fused_order(question, [f"{_field(h, 'title')}: {_field(h, 'text')}" for h in hits])
        hits = [hits[i] for i in order]
    hits = hits[:k]
    context = [f"{_field(h, 'title')}: {_field(h, 'text')}" for h in hits]
    if keep_sentences > 0:
        from sme_mcp.experts.context_window import sentence_window as cut

        context = cut(question, context, keep=keep_sentences, window=sentence_window)
    sources: list[dict[str, str]] = []
    for hit in hits:
        entry = {"source": _field(hit, "source"), "title": _field(hit, "title")}
        if entry not in sources:
            sources.append(entry)
    return context, sources


class AnswerWithContext(dspy.Signature):
    """Answer the question accurately. Use the context passages when they are relevant; otherwise, or
    when there are none, answer from your own knowledge. Reply with the answer itself (a name, number,
    date or short phrase), not a full sentence."""

    context: list[str] = dspy.InputField(desc="retrieved passages, possibly irrelevant; may be empty")
    question: str = dspy.InputField()
    answer: str = dspy.OutputField(desc="the answer only, e.g. 'Real Madrid' or '1969'")


class AnswerClosedBook(dspy.Signature):
    """Answer the question from your own knowledge. Reply with the answer itself (a name, number, date or short
    phrase), not a full sentence."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField(desc="the answer only, e.g. 'Real Madrid' or '1969'")


class AnswerAgain(dspy.Signature):
    """The first answer only repeated words of the question, so it answers nothing. Read the context passages
    again and answer the question with what they say, or from your own knowledge when they do not say. Reply
    with the answer itself (a name, number, date or short phrase), not a full sentence."""

    context: list[str] = dspy.InputField(desc="retrieved passages, possibly irrelevant; may be empty")
    question: str = dspy.InputField()
    rejected_answer: str = dspy.InputField(desc="the first answer, which only repeated the question")
    answer: str = dspy.OutputField(desc="the answer only, e.g. 'Real Madrid' or '1969'")


JUDGE_MAX_TOKENS = 40  # "True" or "False" in the adapter's markers is about 15 tokens; a ramble is cut, not waited for


class JudgeSupport(dspy.Signature):
    """Does the passage say that the proposed answer is the answer to the question? Say false when the passage
    names the proposed answer for something else than what the question asks (another place, person, event,
    team or time), or does not say it at all."""

    passage: str = dspy.InputField(desc="a title and one or two sentences from the user's documents")
    question: str = dspy.InputField()
    proposed_answer: str = dspy.InputField()
    supported: bool = dspy.OutputField(desc="true only if the passage says the proposed answer answers this question")


# What the reasoning field asks for when it is brief: the words that answer are usually one span of one passage
# sentence, and quoting it is the part of step-by-step reasoning that helps a small model read.
BRIEF_REASONING = "one short sentence quoting the words of the passage that answer the question"


def _predictor(signature: type[dspy.Signature], reasoning: bool, brief: bool) -> dspy.Module:
    """Predict, ChainOfThought, or ChainOfThought whose reasoning is one quoting sentence."""
    if not reasoning:
        return dspy.Predict(signature)
    if brief:
        return dspy.ChainOfThought(signature, rationale_field=dspy.OutputField(desc=BRIEF_REASONING))
    return dspy.ChainOfThought(signature)


class RetrievalGeneralExpert(dspy.Module):
    """Retrieve-then-answer: the top `k` passages of `search` feed a ChainOfThought (or a Predict).

    With `draft_first`, the model first answers from its own knowledge alone (`draft`: a short prompt, an answer
    of a few tokens); when that answer is `grounded` in the passages retrieved (experts/grounding.py: named in a
    sentence that covers the question), it is returned, with those passages' sources, and the passages are
    never read by the model: reading them is most of an answer's time on a CPU. Any other draft is dropped and
    the passages are answered from as without it, one short call later.

    The prediction carries `answer`, `reasoning`, `sources` (the distinct `{"source", "title"}` of the
    passages shown to the model, in rank order; empty when nothing relevant was retrieved) and
    `verification`: whether the answer is in those passages (experts/grounding.py, no LM call). With
    `judge_grounding`, an answer that check calls `grounded` is shown to the model once more with the sentence
    found (`judge`: a few dozen tokens in, one word out), and is `partial` unless the model says that sentence
    answers the question: the lexical check cannot tell "the capital of Victoria, in Australia" from "the
    capital of Australia". An answer
    that only repeats words of the question is asked for once more (`answer_again`, told what was rejected)
    when `retry_echo` is on; the second answer is kept unless it repeats the question too.

    Args:
        search: Returns the best hits for a question; a failing search is logged and treated as no hits.
        k: Passages to retrieve; 0 answers closed-book.
        min_similarity: Hits with a `similarity` (query-passage cosine) below this are dropped: a small
            model given off-topic passages answers worse than with none.
        pool: Hits searched before the best `k` are chosen (see `retrieve_context`).
        keep_sentences: Best sentences shown per passage; 0: whole passages (see `retrieve_context`).
        sentence_window: Sentences shown either side of each of those.
        retry_echo: Ask once more when the answer only repeats the question (the `general_retry_echo` setting).
        reasoning: Reason before answering (ChainOfThought) or answer at once (Predict); the
            `general_reasoning` setting. Without reasoning the prediction's `reasoning` is empty.
        brief_reasoning: With reasoning, ask for one sentence quoting the passage's words instead of step-by-step
            reasoning (the `general_brief_reasoning` setting): fewer tokens to wait for.
        draft_first: Answer from the model's own knowledge first and keep that answer when the passages
            support it (the `general_draft_first` setting); the prediction then has `drafted` true.
        judge_grounding: Have the model confirm the sentence behind a `grounded` answer (the
            `general_judge_grounding` setting).

    Example:
        >>> search = lambda q, k: index.search("general", q, k)  # doctest: +SKIP
        >>> expert = RetrievalGeneralExpert(search, draft_first=True)  # doctest: +SKIP
        >>> pred = expert(question="What is the capital of Kenya?")  # doctest: +SKIP
        >>> pred.answer, pred.verification["outcome"], pred.drafted  # doctest: +SKIP
        ('Nairobi', 'grounded', True)
    """

    def __init__(self, search: Search, k: int = 3, min_similarity: float | None = None, pool: int = 0,
                 keep_sentences: int = 0, sentence_window: int = 1, retry_echo: bool = True,
                 reasoning: bool = True, brief_reasoning: bool = False, draft_first: bool = False,
                 judge_grounding: bool = False) -> None:
        super().__init__()
        self.search = search
        self.k = k
        self.min_similarity = min_similarity
        self.pool = pool
        self.keep_sentences = keep_sentences
        self.sentence_window = sentence_window
        self.retry_echo = retry_echo
        # Not named `respond` like GeneralExpert's predictor: DSPy loads saved signatures by field position,
        # so a GeneralExpert program would load silently mislabelled; a new name makes that a KeyError.
        self.generate_answer = _predictor(AnswerWithContext, reasoning, brief_reasoning)
        self.answer_again = _predictor(AnswerAgain, reasoning, brief_reasoning)
        # Always a part of the program (saved programs keep one shape whatever the setting); called only when
        # draft_first is on.
        self.draft = dspy.Predict(AnswerClosedBook)
        self.draft_first = draft_first
        self.judge = dspy.Predict(JudgeSupport)  # likewise always present; called with judge_grounding on
        self.judge_grounding = judge_grounding

    def forward(self, question: str) -> dspy.Prediction:
        context, sources = retrieve_context(self.search, question, self.k, self.min_similarity, self.pool,
                                            self.keep_sentences, self.sentence_window)
        if self.draft_first and context:
            drafted = self._grounded_draft(question, context, sources)
            if drafted is not None:
                return drafted
        pred = self.generate_answer(context=context, question=question)
        answer, reasoning = str(pred.answer or ""), pred.get("reasoning", "")
        if self.retry_echo and repeats_question(answer, question):
            again = self.answer_again(context=context, question=question, rejected_answer=answer)
            second = str(again.answer or "")
            if not repeats_question(second, question):
                answer, reasoning = second, again.get("reasoning", "")
        return dspy.Prediction(answer=answer, reasoning=reasoning, sources=sources,
                               verification=self._verify(answer, context, question), drafted=False)

    def _verify(self, answer: str, context: list[str], question: str) -> dict[str, Any]:
        """`check_grounding`'s verdict, with a `grounded` one confirmed by `judge` when `judge_grounding` is on."""
        verification, evidence = grounding_with_evidence(answer, context, question)
        if not (self.judge_grounding and evidence):  # evidence only for a grounded answer
            return verification
        from dspy.utils.exceptions import AdapterParseError

        started = time.perf_counter()
        try:
            supported = self.judge(passage=evidence, question=question, proposed_answer=answer,
                                   config={"max_tokens": JUDGE_MAX_TOKENS}).supported
        except AdapterParseError:
            verification["checked"] += "; the model's confirmation of that sentence could not be read, so it stands"
            return verification
        verification["seconds"] = round(verification["seconds"] + time.perf_counter() - started, 4)
        if supported is True:
            verification["checked"] += "; the model, shown that sentence, confirmed it answers the question"
            return verification
        verification["outcome"] = "partial"
        verification["checked"] = (
            f"the answer appears in the passage '{verification['details'][0]}', but the model, shown the sentence "
            f"that names it (\"{evidence[:300]}\"), did not confirm that it answers the question: the passages may "
            "not say it")
        return verification

    def _grounded_draft(self, question: str, context: list[str],
                        sources: list[dict[str, str]]) -> dspy.Prediction | None:
        """The model's answer without the passages, if they support it (`grounded`); else None.

        The draft runs with a trace of its own, added to the caller's only when the draft is the answer: an
        optimizer then learns drafts from drafts that were returned and right, not from discarded guesses.
        """
        from dspy.utils.exceptions import AdapterParseError

        with dspy.context(trace=[]):
            try:
                pred = self.draft(question=question)
            except AdapterParseError:
                return None  # the passages are read as without a draft
            answer = str(pred.answer or "").strip()
            verification = self._verify(answer, context, question)  # an empty answer or an echo is never grounded
            trace = list(dspy.settings.trace or [])
        if verification["outcome"] != "grounded":
            return None
        if dspy.settings.trace is not None:
            dspy.settings.trace.extend(trace)
        verification["checked"] = ("the model answered from its own knowledge, before reading the passages; "
                                   + verification["checked"])
        titles = set(verification["details"])
        return dspy.Prediction(answer=answer, reasoning="", verification=verification, drafted=True,
                               sources=[s for s in sources if s["title"] in titles] or sources)

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
