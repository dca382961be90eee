"""The router's first stage: a nearest-neighbour vote over MiniLM sentence embeddings, no LM call.

A clear question ("Write a Python function that...", "What is the capital of...") is routed in a
few milliseconds by the labels of the most similar known questions; only a question whose
neighbours disagree, or that resembles nothing known, goes on to the LM stage. The known
questions are the router gold set's train split plus questions phrased as people ask them
(`goldsets/router/train_phrased.jsonl`); optimizing the router refits this stage on them.

The stage is a `dspy` Parameter, so a saved router program carries its examples and thresholds
and `load` restores them like any predictor's demos.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dspy.predict.parameter import Parameter

log = logging.getLogger(__name__)

Embed = Callable[[Sequence[str]], Any]  # texts -> float32 array (n, dim), rows L2-normalised


@dataclass(frozen=True)
class Vote:
    """The outcome of one nearest-neighbour vote.

    Attributes:
        label: The label with the largest similarity-weighted vote.
        share: Its share of the weighted vote (0-1), used as the routing confidence.
        similarity: Cosine similarity of the single nearest known question.
        decided: True when share and similarity clear the stage's thresholds.
    """

    label: str
    share: float
    similarity: float
    decided: bool


class NearestNeighbourStage(Parameter):
    """Similarity-weighted k-nearest-neighbour classifier over sentence embeddings.

    Args:
        embed: Turns texts into L2-normalised vectors (the document index's MiniLM embedder).
        k: Neighbours that vote.
        min_share: Smallest weighted vote share that decides without the LM.
        min_similarity: Smallest cosine similarity of the nearest neighbour that decides.
        cache_dir: Where the examples' embedding matrix is kept between runs (optional).
        model_name: The embedder's model, part of the cache key.
        same_question: A known question at least this similar is the same question asked again: its
            label decides alone (a question a user said was misrouted routes as the user said).

    The defaults were chosen on the router dev split (bench/router_stage.py): the vote alone was
    right on 98 of 100 dev questions, and both misses had a share below 0.7, so those go to the LM.
    General questions resemble little (nearest similarity often 0.2-0.3), so the similarity floor
    only sends questions that resemble nothing known to the LM.

    Example:
        >>> stage = NearestNeighbourStage(embedder.embed).fit([("What is 2+2?", "math"), ...])
        >>> stage.vote("What is 3+3?").label
        'math'
    """

    def __init__(self, embed: Embed | None = None, k: int = 7, min_share: float = 0.7, min_similarity: float = 0.15,
                 cache_dir: Path | None = None, model_name: str = "", same_question: float = 0.95):
        self.embed = embed
        self.model_name = model_name
        self.k, self.min_share, self.min_similarity = k, min_share, min_similarity
        self.same_question = same_question
        self.cache_dir = cache_dir
        self.examples: list[tuple[str, str]] = []
        self._matrix: Any = None
        self._known_rows: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- fitting ---------------------------------------------------------------------------------

    def fit(self, examples: Iterable[tuple[str, str]]) -> NearestNeighbourStage:
        """Replaces the known questions with `examples` (question, label); duplicates are dropped."""
        seen: dict[str, str] = {}
        for question, label in examples:
            key = " ".join(question.split())
            if key and key not in seen:
                seen[key] = label
        rows = self._rows()
        self.examples = list(seen.items())
        self._matrix = None
        self._known_rows = rows  # refitting embeds only the questions it has not embedded before
        return self

    def _rows(self) -> dict[str, Any]:
        """Question -> its embedding, for the questions embedded so far."""
        rows = dict(getattr(self, "_known_rows", None) or {})
        if self._matrix is not None:
            rows.update((q, self._matrix[i]) for i, (q, _) in enumerate(self.examples))
        return rows

    @property
    def labels(self) -> list[str]:
        return sorted({label for _, label in self.examples})

    def _examples_matrix(self) -> Any:
        import numpy as np

        with self._lock:
            if self._matrix is not None:
                return self._matrix
            if self.embed is None:
                raise RuntimeError("the nearest-neighbour stage has no embedder")
            texts = [q for q, _ in self.examples]
            # The embedder's model is part of the key: another model's matrix would vote wrongly.
            digest = hashlib.sha256(json.dumps([self.model_name, texts]).encode()).hexdigest()[:24]
            cached = self.cache_dir / f"router-{digest}.npy" if self.cache_dir else None
            matrix = None
            if cached is not None and cached.is_file():
                try:
                    matrix = np.load(cached)
                    if matrix.shape[0] != len(texts):
                        matrix = None
                except (OSError, ValueError):
                    matrix = None
            if matrix is None:
                known = getattr(self, "_known_rows", None) or {}
                missing = [t for t in texts if t not in known]
                fresh = dict(zip(missing, np.asarray(self.embed(missing), dtype=np.float32), strict=True)) \
                    if missing else {}
                matrix = np.stack([known[t] if t in known else fresh[t] for t in texts]).astype(np.float32)
                if cached is not None:
                    try:
                        cached.parent.mkdir(parents=True, exist_ok=True)
                        tmp = cached.with_suffix(".tmp.npy")
                        np.save(tmp, matrix)
                        tmp.replace(cached)
                    except OSError as exc:
                        log.debug("router embedding cache not written: %s", exc)
            self._matrix = matrix
            return matrix

    def warm(self) -> None:
        """Embeds the known questions now (the first vote would otherwise pay for it)."""
        if self.examples and self.embed is not None:
            self._examples_matrix()

    # -- voting ----------------------------------------------------------------------------------

    def vote(self, question: str) -> Vote | None:
        """The neighbours' vote on `question`; None when the stage has no examples or no embedder."""
        return self.votes([question])[0]

    def embed_questions(self, questions: Sequence[str]) -> Any:
        """The questions' vectors in one batch, to vote with here and in refitted copies (`votes(vectors=)`)."""
        import numpy as np

        if self.embed is None:
            raise RuntimeError("the nearest-neighbour stage has no embedder")
        return np.asarray(self.embed(list(questions)), dtype=np.float32)

    def votes(self, questions: Sequence[str], vectors: Any = None) -> list[Vote | None]:
        """Votes on many questions, embedded in one batch (or given as `vectors`, from `embed_questions`)."""
        if not self.examples or self.embed is None or not questions:
            return [None] * len(questions)
        matrix = self._examples_matrix()
        queries = self.embed_questions(questions) if vectors is None else vectors
        return [self._vote(matrix @ query) for query in queries]

    def _vote(self, sims: Any) -> Vote | None:
        import numpy as np

        k = min(self.k, len(sims))
        nearest = np.argpartition(-sims, k - 1)[:k]
        weights: dict[str, float] = {}
        for i in nearest:
            label = self.examples[int(i)][1]
            weights[label] = weights.get(label, 0.0) + max(float(sims[i]), 0.0)
        total = sum(weights.values())
        if total <= 0:
            return None
        label, weight = max(weights.items(), key=lambda kv: kv[1])
        share, top = weight / total, float(sims[nearest].max())
        if top >= getattr(self, "same_question", 1.0):  # the same question again: its own label, whatever else votes
            label = self.examples[int(nearest[int(np.argmax(sims[nearest]))])][1]
            return Vote(label=label, share=round(weights[label] / total, 4), similarity=round(top, 4), decided=True)
        return Vote(label=label, share=round(share, 4), similarity=round(top, 4),
                    decided=share >= self.min_share and top >= self.min_similarity)

    # -- dspy Parameter protocol -----------------------------------------------------------------

    def reset(self) -> None:
        """Kept as fitted: optimizers reset demos, not the known questions."""

    def dump_state(self, json_mode: bool = True) -> dict[str, Any]:
        return {"k": self.k, "min_share": self.min_share, "min_similarity": self.min_similarity,
                "same_question": self.same_question, "examples": [[q, label] for q, label in self.examples]}

    def load_state(self, state: dict[str, Any]) -> NearestNeighbourStage:
        self.k = int(state.get("k", self.k))
        self.min_share = float(state.get("min_share", self.min_share))
        self.min_similarity = float(state.get("min_similarity", self.min_similarity))
        self.same_question = float(state.get("same_question", self.same_question))
        self.fit((str(q), str(label)) for q, label in state.get("examples", []))
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> NearestNeighbourStage:
        # Optimizers deep-copy programs; the embedder (an ONNX session) and the matrix are shared.
        # (copy.copy would go through __getstate__, which drops the embedder for pickling.)
        new = self.__class__.__new__(self.__class__)
        new.__dict__.update(self.__dict__)
        new.examples = list(self.examples)
        new._known_rows = dict(getattr(self, "_known_rows", None) or {})
        new._lock = threading.Lock()
        return new

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        state["embed"] = None
        state["_known_rows"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def load_router_examples(goldsets_dir: Path) -> list[tuple[str, str]]:
    """The router's known questions: its train split plus the hand-phrased train questions."""
    from sme_mcp.optimize.goldsets import load_goldset

    examples = []
    for name in ("train.jsonl", "train_phrased.jsonl"):
        path = goldsets_dir / "router" / name
        if path.is_file():
            examples += [(item.question, item.label) for item in load_goldset(path) if item.label]
    return examples
