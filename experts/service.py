"""`ExpertService`: the one DSPy core behind the MCP tools and the CLI.

DSPy, LiteLLM and MLflow are imported on first use, not at construction, so a server built
around this object answers `tools/list` before any of them has loaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from sme_mcp.config.settings import ROLES, Domain, LMSpec, Role, Settings
from sme_mcp.experts.answer import ExpertAnswer, answer_from_prediction
from sme_mcp.experts.answer_trace import AnswerTrace
from sme_mcp.experts.exact_answer import exact_answer
from sme_mcp.experts.lm import LMChain, LocalBackend, Served
from sme_mcp.experts.programs import ProgramStore
from sme_mcp.experts.registry import ROUTER, ExpertRegistry
from sme_mcp.experts.usage_log import UsageLog, new_entry_id
from sme_mcp.tools.doc_index import DEFAULT_COLLECTION, DocumentIndex, DocumentIndexError, Hit, default_index
from sme_mcp.tools.errors import SmeError
from sme_mcp.tools.worker import SympyWorkerPool

if TYPE_CHECKING:
    import dspy

log = logging.getLogger(__name__)

class ExpertInfo(BaseModel):
    name: str
    description: str
    module: str
    program_version: str | None
    gate_score: float | None = Field(
        default=None, description="The active version's score on the items that chose it (its promotion gate)"
    )
    gate_split: str | None = Field(default=None, description="Where that gate ran: dev, or the first holdout items")
    holdout_score: float | None = Field(
        default=None, description="The active program's score on holdout items that chose nothing (None: not measured)"
    )
    holdout_n: int | None = None
    holdout_receipt: str | None = None
    backends: list[str]
    source: str | None = Field(default=None, description="'built-in', or the file that declared the expert "
                               "(None: the router)")


class InvalidQuestion(SmeError, ValueError):
    """The question or domain is not acceptable; the message says how to fix it."""


def prepare_dspy_env(settings: Settings) -> None:
    """Environment DSPy and LiteLLM read at import: no internet, cache under the data dir."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("DSPY_CACHEDIR", str(settings.data_dir / "dspy_cache"))


class ExpertService:
    """Routes questions to the experts and runs them on the role's LM chain.

    Args:
        settings: Service settings.
        local: The supervised local LM, or None when there is none.
        pool: SymPy worker pool; one is created from the settings if omitted.
    """

    def __init__(self, settings: Settings, local: LocalBackend | None, pool: SympyWorkerPool | None = None,
                 registry: ExpertRegistry | None = None):
        self.settings = settings
        # Built first: a broken expert declaration stops start-up here, before any process or pool exists.
        self.registry = registry if registry is not None else ExpertRegistry.from_settings(settings)
        self.local = local
        self.pool = pool or SympyWorkerPool(settings.sympy_workers, settings.sympy_timeout, settings.sympy_memory_mb)
        self.chains = {role: LMChain(role, self.chain_specs(role), local, cache=settings.lm_cache,
                                     router_settings=settings.lm_router) for role in self.registry.roles}
        self.programs = ProgramStore(settings.data_dir / "programs", settings.shipped_programs_dir)
        self._modules: dict[str, dspy.Module] = {}
        self._versions: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self._dspy_ready = False
        self._documents: DocumentIndex | None = None
        self._documents_lock = threading.Lock()
        self.usage = UsageLog.from_settings(settings)

    def chain_specs(self, role: Role) -> list[LMSpec]:
        """The LM fallback chain of the router or an expert: its settings, its declaration, or the general one."""
        if role in ROLES:
            return self.settings.role(role).chain
        return self.registry.get(role).chain or self.settings.general.chain

    # -- setup -----------------------------------------------------------------------------------

    def _ensure_dspy(self) -> None:
        if self._dspy_ready:
            return
        prepare_dspy_env(self.settings)
        import dspy

        cache_dir = self.settings.data_dir / "dspy_cache"
        cache_dir.mkdir(parents=True, exist_ok=True)
        dspy.configure_cache(disk_cache_dir=str(cache_dir))
        if self.settings.mlflow.enabled:
            self._enable_mlflow()
        self._dspy_ready = True

    def _enable_mlflow(self) -> None:
        import mlflow

        uri = self.settings.mlflow.tracking_uri or f"sqlite:///{(self.settings.data_dir / 'mlflow.db').resolve()}"
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(self.settings.mlflow.experiment)
        mlflow.dspy.autolog()
        log.info("MLflow tracing DSPy calls to %s", uri)

    @property
    def documents(self) -> DocumentIndex:
        """The document index (LanceDB under the data dir), shared by the general expert and the MCP tools."""
        with self._documents_lock:
            if self._documents is None:
                self._documents = default_index(self.settings.data_dir, self.settings.cache_dir)
            return self._documents

    def search_documents(self, question: str, k: int) -> list[Hit]:
        """Hits from the general collection; none while it does not exist (nothing ingested yet)."""
        try:
            return self.documents.search(DEFAULT_COLLECTION, question, k)
        except DocumentIndexError:
            return []

    def build_module(self, name: Role) -> dspy.Module:
        """A fresh, uncompiled module for the router or an expert (what optimizers start from).

        Raises:
            RegistryError: `name` is neither the router nor a registered expert.
        """
        if name == ROUTER:
            from sme_mcp.experts.modules import ExpertRouter

            router = ExpertRouter(self.router_stage())
            router.set_experts(self.registry)
            return router
        return self.registry.get(name).build(self)

    def router_examples(self) -> list[tuple[str, str]]:
        """The router's known questions: its train split and hand-phrased questions, then the train
        questions of the declared experts (labelled with their names)."""
        from sme_mcp.experts.router_stage import load_router_examples

        return [*load_router_examples(self.settings.goldsets_dir), *self.registry.router_examples()]

    def router_stage(self) -> Any:
        """A fresh nearest-neighbour stage fitted on `router_examples()`."""
        from sme_mcp.experts.router_stage import NearestNeighbourStage

        embedder = self.documents.embedder
        stage = NearestNeighbourStage(embedder.embed, cache_dir=self.settings.cache_dir / "router",
                                      model_name=embedder.model_name)
        return stage.fit(self.router_examples())

    def module(self, name: Role) -> dspy.Module:
        """The active module for a role: the compiled version if one is active, else the base one."""
        with self._lock:
            self._ensure_dspy()
            if name not in self._modules:
                module = self.build_module(name)
                version = self.programs.active(name)
                if version is not None:
                    missing = self.programs.load_into(module, version)
                    if missing:
                        log.warning("%s program %s predates parts %s; they run uncompiled",
                                    name, version.version, ", ".join(missing))
                    log.info("loaded %s program version %s", name, version.version)
                if name == ROUTER:
                    module.set_experts(self.registry)  # a compiled router's instructions predate declared experts
                self._modules[name] = module
                self._versions[name] = version.version if version else None
            return self._modules[name]

    def program_version(self, name: Role) -> str | None:
        """The compiled version the role's module runs (None: the base program), loading it if needed."""
        self.module(name)
        return self._versions.get(name)

    def reload(self, name: Role) -> None:
        """Forgets the cached module so the next call loads the (newly) active version."""
        with self._lock:
            self._modules.pop(name, None)
            self._versions.pop(name, None)

    # -- questions -------------------------------------------------------------------------------

    def validate(self, question: object, domain: object) -> tuple[str, Domain | None]:
        if not isinstance(question, str) or not question.strip():
            raise InvalidQuestion("question must be a non-empty string")
        if len(question) > self.settings.max_question_chars:
            raise InvalidQuestion(
                f"question is {len(question)} characters long; the limit is {self.settings.max_question_chars} "
                "(SME_MAX_QUESTION_CHARS)"
            )
        if domain is not None and domain not in self.registry:
            raise InvalidQuestion(f"unknown domain {str(domain)[:40]!r}; use one of: "
                                  f"{', '.join(self.registry.names)} (or omit it)")
        return question.strip(), domain  # type: ignore[return-value]

    def ask(self, question: str, domain: str | None = None, trace: AnswerTrace | None = None, *,
            module: dspy.Module | None = None, lm: Any = None) -> ExpertAnswer:
        """Answers a question, routing it unless `domain` is given.

        An exact math request ("derivative of x**3*sin(x)", "15% of 240") is answered by SymPy with
        no router and no LM; a clear question is routed by nearest neighbours with no LM call.

        Args:
            question: The question as the user wrote it.
            domain: The expert to use; None lets the router choose.
            trace: Collects the answer's cost and forwards its progress; a fresh one if omitted.
            module: Answer with this program instead of the domain's active one (an optimizer scoring a
                candidate the way users are answered); needs `domain`.
            lm: Run the program on this LM instead of the domain's chain (the optimizer's own).

        Raises:
            InvalidQuestion: Empty, oversized, or an unknown domain.
            NoBackendError: No LM backend could answer.
            ComputeError: Plain arithmetic that SymPy refused (too large, malformed).
            AnswerCancelled: `trace.cancel` was set.
        """
        trace = trace or AnswerTrace()
        question, chosen = self.validate(question, domain)
        if chosen in (None, "math"):
            with trace.stage("exact", "checking for an exact math request"):
                exact = exact_answer(question, self.pool, trace)
            if exact is not None:
                exact.routed_by = "explicit" if chosen else "fast_path"
                exact.cost = trace.cost()
                return exact
        routed_by: Any = "explicit"
        confidence = None
        if chosen is None:
            with trace.stage("routing", "choosing an expert"):
                chosen, confidence, routed_by = self.route(question, trace)
        with trace.stage(chosen, f"{chosen} expert ({routed_by})"):
            answer = self._answer(question, chosen, routed_by, confidence, trace, module=module, lm=lm)
        answer.cost = trace.cost()
        answer.latency_ms = answer.cost.total_seconds * 1000
        return answer

    def ask_logged(self, question: str, domain: str | None = None, trace: AnswerTrace | None = None,
                   client: str = "mcp") -> ExpertAnswer:
        """`ask`, with the question and its outcome written to the usage log and the answer given its id.

        This is what users' questions go through (the `ask_expert` tool, `sme-mcp ask`); evaluations
        call `ask` and are not logged. A failed question is logged with its error, then re-raised.
        Rejected input (`InvalidQuestion`) is not logged: there was no question to learn from.

        Args:
            question: The question as the user wrote it.
            domain: The expert to use; None lets the router choose.
            trace: As for `ask`.
            client: Which entry point asked: "mcp" or "cli".
        """
        trace = trace or AnswerTrace()
        entry_id = new_entry_id()
        try:
            answer = self.ask(question, domain, trace=trace)
        except InvalidQuestion:
            raise
        except BaseException as exc:
            try:
                self.usage.record(entry_id=entry_id, question=str(question).strip(), asked_domain=domain,
                                  error=f"{type(exc).__name__}: {str(exc)[:500]}",
                                  latency_ms=(time.perf_counter() - trace.started) * 1000, client=client)
            except Exception as log_failure:  # the log must never turn into the answer's failure
                log.warning("usage log not written: %s", log_failure)
            raise
        if not self.usage.enabled:
            return answer  # no id: there is no entry it could be rated by
        answer.id = entry_id
        try:
            self.usage.record(
                entry_id=entry_id, question=question.strip(), asked_domain=domain, domain=answer.domain,
                routed_by=answer.routed_by, confidence=answer.confidence, answer=answer.answer,
                backend=answer.backend, model=answer.model, program_version=answer.program_version,
                latency_ms=answer.latency_ms, cost=answer.cost.model_dump() if answer.cost else None,
                verification=answer.verification.model_dump() if answer.verification else None, client=client,
            )
        except Exception as exc:  # an answer the user waited for is returned even when the log cannot be written
            log.warning("usage log not written: %s", exc)
            answer.id = None
        return answer

    def route(self, question: str, trace: AnswerTrace | None = None, *, router: dspy.Module | None = None,
              lm: Any = None) -> tuple[Domain, float | None, str]:
        """Chooses a domain: (domain, confidence, routed_by).

        The router's nearest-neighbour stage decides clear questions without an LM call (and
        without waiting for the local server); the LM stage decides the rest.

        Args:
            question: The question.
            trace: Collects the cost; a fresh one if omitted.
            router: Route with this router program instead of the active one (an optimizer's candidate).
            lm: Run its LM stage on this LM instead of the router's chain.
        """
        router = router if router is not None else self.module("router")
        trace = trace or AnswerTrace()
        vote = None
        if getattr(router, "use_nearest", False) and router.nearest is not None:
            try:
                vote = router.nearest.vote(question)
            except Exception as exc:  # no embedder here: the LM stage still routes
                log.warning("nearest-neighbour routing unavailable (%s); using the LM router", exc)
        if vote is not None and vote.decided and vote.label in self.registry:
            return vote.label, vote.share, "nearest_neighbours"  # type: ignore[return-value]
        try:
            with trace.recording(stream=self.settings.lm_stream):
                pred, _ = self._run("router", lambda: router.lm_route(question), lm)
        except Exception as exc:
            from sme_mcp.experts.lm import NoBackendError

            if isinstance(exc, NoBackendError):
                raise
            if vote is not None and vote.label in self.registry:
                log.warning("LM router failed (%s); taking the neighbours' vote", exc)
                return vote.label, vote.share, "nearest_neighbours"  # type: ignore[return-value]
            log.warning("router failed (%s); answering with the general expert", exc)
            return "general", None, "router_fallback"
        domain = pred.domain if pred.domain in self.registry else "general"
        try:
            confidence = max(0.0, min(1.0, float(pred.confidence)))
        except (TypeError, ValueError):
            confidence = None
        return domain, confidence, "router"

    def _run(self, role: Role, call: Any, lm: Any = None) -> tuple[Any, Served]:
        """`call` on the role's LM chain, or on `lm` when one is given (then the chain's first backend is named)."""
        if lm is None:
            return self.chains[role].run(call)
        from sme_mcp.experts.adapter import lm_context

        with lm_context(lm):
            return call(), Served("given", str(getattr(lm, "model", "") or ""))

    def _answer(
        self, question: str, domain: Domain, routed_by: Any, confidence: float | None, trace: AnswerTrace,
        module: dspy.Module | None = None, lm: Any = None,
    ) -> ExpertAnswer:
        module = module if module is not None else self.module(domain)
        with trace.recording(stream=self.settings.lm_stream):
            pred, served = self._run(domain, lambda: module(question=question), lm)
        answer = answer_from_prediction(pred, served, domain, routed_by, confidence, trace.started,
                                        program_version=self._versions.get(domain))
        trajectory = getattr(pred, "trajectory", None)
        if domain == "math" and trajectory and answer.verification is not None and answer.verification.method == "none":
            from sme_mcp.experts.math_check import check_against_tools

            with trace.stage("check", "checking the answer against SymPy's result"):
                checked, verification = check_against_tools(question, answer.answer, trajectory, self.pool)
            if verification is not None:
                answer.answer, answer.verification = checked, verification
        if answer.verification is not None and answer.verification.confidence is None:
            from sme_mcp.experts.track_record import confidence as track_record

            known = track_record(domain, answer.verification.method, answer.verification.outcome)
            if known is not None:
                answer.verification.confidence, answer.verification.confidence_basis = known
        return answer

    def describe_lm(self, role: Role) -> dict[str, Any]:
        """The LM chain of a role, for receipts: models, endpoints, temperature, token limits."""
        info: dict[str, Any] = {"role": role, "chain": [spec.model_dump() for spec in self.chain_specs(role)]}
        if self.local is not None:
            info["local_model"] = self.local.model_name
        return info

    def experts(self) -> list[ExpertInfo]:
        from sme_mcp.experts.builtin_experts import ROUTER_DESCRIPTION
        from sme_mcp.optimize.selection import clean_holdout_score

        out = []
        for role in self.registry.roles:
            version = self.programs.active(role)
            if role == ROUTER:
                description, module = ROUTER_DESCRIPTION
            else:
                spec = self.registry.get(role)
                description, module = spec.description, spec.module
            try:
                clean = clean_holdout_score(self.settings.receipt_dirs(), role, version.version if version else None)
            except (OSError, ValueError, KeyError, TypeError) as exc:  # a broken receipt must not hide the experts
                log.warning("holdout score of %s unknown: %s", role, exc)
                clean = None
            gate_score = None
            if version is not None:  # versions gated before gates moved to dev keep that score as holdout_score
                gate_score = version.gate_score if version.gate_split else version.holdout_score
            out.append(ExpertInfo(
                name=role, description=description, module=module,
                program_version=version.version if version else None,
                gate_score=gate_score,
                gate_split=(version.gate_split or "holdout (first items)") if version else None,
                holdout_score=clean["score"] if clean else None,  # type: ignore[arg-type]
                holdout_n=clean["n"] if clean else None,  # type: ignore[arg-type]
                holdout_receipt=clean["receipt"] if clean else None,  # type: ignore[arg-type]
                backends=[lm.label for lm in self.chain_specs(role)], source=None if role == ROUTER else spec.source,
            ))
        return out

    def close(self) -> None:
        self.pool.close()
        self.registry.close()
        if self._dspy_ready and self.settings.mlflow.enabled:
            # Autolog is process-wide: left on, it would send every later DSPy call of this process (another
            # service's, a test's) to this service's tracking store, and retry for minutes once that is gone.
            import mlflow

            with contextlib.suppress(Exception):
                mlflow.flush_trace_async_logging()
            with contextlib.suppress(Exception):
                mlflow.dspy.autolog(disable=True)

