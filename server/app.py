"""The MCP server: expert tools plus the SymPy tools, each taking one Pydantic input model."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from sme_mcp.experts.answer import ExpertAnswer
from sme_mcp.experts.answer_trace import AnswerCancelled, AnswerTrace
from sme_mcp.experts.lm import NoBackendError
from sme_mcp.experts.service import ExpertInfo, ExpertService, InvalidQuestion
from sme_mcp.optimize.evaluate import EvalReport
from sme_mcp.optimize.feedback import RateResult
from sme_mcp.optimize.jobs import Job, JobConflict, JobManager
from sme_mcp.optimize.optimizer import OptimizeRequest, run_optimization
from sme_mcp.server import tool_inputs as ti
from sme_mcp.server.local_lm import LocalServer
from sme_mcp.tools.errors import SmeError
from sme_mcp.tools.worker import ComputeError

log = logging.getLogger(__name__)

VERSION = "0.1.0"
def instructions(experts: tuple[str, ...]) -> str:
    """The server's instructions, naming the registry's experts."""
    return (
        f"Ask questions with ask_expert ({', '.join(experts[:-1])} or {experts[-1]}; the router picks when no "
        "domain is given); say whether an answer was right with rate_answer and its id, so the experts learn from "
        "use. For exact symbolic math call the SymPy tools directly: evaluate, simplify, expand, factor, solve, "
        "differentiate, integrate, limit, series, summation, matrix_determinant, matrix_inverse, matrix_eigenvalues."
    )


INSTRUCTIONS = instructions(("math", "code", "general"))
EXACT = ToolAnnotations(readOnlyHint=True, openWorldHint=False, idempotentHint=True, destructiveHint=False)


class SympyResult(BaseModel):
    result: str = Field(description="Exact result in SymPy syntax")
    latex: str = Field(description="The same result as LaTeX")
    numeric: str | None = Field(default=None, description="Decimal value, when the result is a number")


class ExpertList(BaseModel):
    experts: list[ExpertInfo]
    local_lm: dict[str, Any] | None = Field(default=None, description="State of the supervised llama-server")


def add_model_tool(
    server: MCPServer,
    name: str,
    model: type[BaseModel],
    handler: Callable[..., Awaitable[Any]],
    returns: type,
    description: str,
    annotations: ToolAnnotations | None = None,
    with_context: bool = False,
) -> None:
    """Registers `handler` as a tool whose flat argument schema is the fields of `model`.

    With `with_context`, the handler is called as `handler(args, ctx)` with the request `Context`
    (progress notifications); the context is not part of the schema.
    """
    params = [
        inspect.Parameter(
            field_name, inspect.Parameter.KEYWORD_ONLY,
            # The FieldInfo carries description and constraints (max_length, ge/le) into the schema.
            annotation=Annotated[info.annotation, info],
            default=inspect.Parameter.empty if info.is_required() else info.default,
        )
        for field_name, info in model.model_fields.items()
    ]
    if with_context:
        params.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context))

    async def tool(**kwargs: Any) -> Any:
        ctx = kwargs.pop("ctx", None)
        try:
            args = model(**kwargs)
            return await (handler(args, ctx) if with_context else handler(args))
        except ToolError:
            raise
        except ValidationError as exc:
            raise ToolError(f"{name}: invalid arguments: {exc.errors(include_input=False)}") from exc
        except SmeError as exc:  # every error a user can fix says what failed and what to do: it is the message
            raise ToolError(f"{name}: {exc}") from exc
        except Exception as exc:  # the last net: no failure reaches the client as a bare "Error executing tool"
            log.exception("%s failed unexpectedly", name)
            raise ToolError(f"{name} failed unexpectedly ({type(exc).__name__}: {str(exc)[:200]}); the server is "
                            "still running. Try again; the server log has the details.") from exc

    tool.__name__ = name
    tool.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    # The SDK finds the Context parameter through get_type_hints(), i.e. __annotations__.
    tool.__annotations__ = {p.name: p.annotation for p in params} | {"return": returns}
    server.add_tool(tool, name=name, description=description, annotations=annotations)


def build_server(service: ExpertService, local: LocalServer | None = None) -> MCPServer:
    """Builds the MCP server around one `ExpertService` (shared with the CLI)."""
    experts = service.registry.names
    inputs = ti.ToolInputs(experts)
    server = MCPServer("sme-mcp", version=VERSION, instructions=instructions(experts))
    local_status = local.status if local is not None else None

    async def ask_expert(args: ti.AskExpert, ctx: Context) -> ExpertAnswer:
        return await answer_with_progress(service, args, ctx)

    add_model_tool(
        server, "ask_expert", inputs.AskExpert, ask_expert, ExpertAnswer,
        f"Answer a question with an expert ({', '.join(experts)}; DSPy programs on a local LM). "
        "Exact math requests are answered by SymPy at once; clear questions are routed without the LM. "
        "Sends progress notifications (stage, model and tool calls) at least every few seconds and stops "
        "when cancelled. Returns the answer with the domain, how it was routed, confidence, reasoning, the "
        "backend that served it, latency, tools used and its cost (LM calls, tokens, seconds per stage).",
        ToolAnnotations(readOnlyHint=True, openWorldHint=False, destructiveHint=False),
        with_context=True,
    )

    async def list_experts(args: BaseModel) -> ExpertList:
        return ExpertList(experts=service.experts(), local_lm=local_status() if local_status else None)

    add_model_tool(
        server, "list_experts", _NoInput, list_experts, ExpertList,
        "List the experts (and the router): description, DSPy module, active program version, holdout "
        "score and backend chain; plus the state of the local LM server.",
        EXACT,
    )

    async def run_eval(args: ti.RunEval, ctx: Context) -> EvalReport:
        from sme_mcp.optimize.evaluate import EvalCancelled
        from sme_mcp.optimize.evaluate import run_eval as evaluate
        from sme_mcp.optimize.goldsets import GoldsetError, check_client_goldset
        from sme_mcp.tools.file_access import AccessDenied

        token = anyio.lowlevel.current_token()
        cancel = threading.Event()

        def progress(done: int, total: int, correct: int) -> None:
            message = f"{done}/{total} items, {correct} correct"
            with contextlib.suppress(Exception):  # a client gone mid-run must not fail the eval
                anyio.from_thread.run(functools.partial(ctx.report_progress, done, total, message), token=token)

        def work() -> EvalReport:
            # A client's file must resolve inside the allowed gold-set folders and pass the bounded, content-free
            # validation before the evaluation reads it (SME_CLIENT_FILES__GOLDSET_ROOTS).
            path: Path | None = check_client_goldset(service.settings, args.goldset_path) if args.goldset_path else None
            return evaluate(
                service, args.domain, args.split, path=path,
                limit=args.limit, threads=args.threads, progress=progress, cancel=cancel,
                lm_info=local.model_info() if local is not None else None, write=args.write_receipt,
            )[0]

        try:
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except (AccessDenied, GoldsetError, NoBackendError, EvalCancelled) as exc:
            raise ToolError(str(exc)) from exc
        except OSError as exc:  # e.g. the receipts dir is not writable; never the gold set's content
            log.exception("run_eval failed")
            raise ToolError(f"run_eval failed: {exc.strerror or type(exc).__name__} ({exc.filename or 'no file'}); "
                            "check that the receipts dir (SME_RECEIPTS_DIR) is writable, or pass "
                            "write_receipt=false") from exc
        except Exception as exc:  # never a bare "Error executing tool": say what failed and what to do
            log.exception("run_eval failed unexpectedly")
            raise ToolError(f"run_eval failed unexpectedly ({type(exc).__name__}); the server is still running. "
                            "Try again, with a smaller limit; the server log has the details") from exc
        finally:
            cancel.set()  # on client cancellation the worker thread stops after its in-flight items

    add_model_tool(
        server, "run_eval", inputs.RunEval, run_eval, EvalReport,
        "Score the active program of an expert (or the router) on a gold set split, or on any JSONL file in "
        "the gold-set format. Sends progress notifications per item, honours cancellation, writes a receipt "
        "(readable as resource receipt://NAME) and returns score, Wilson 95% interval, threshold and pass/fail.",
        ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False),
        with_context=True,
    )

    jobs = JobManager(lambda req, progress, cancel: run_optimization(
        service, req, progress, cancel, lm_info=local.model_info() if local is not None else None))

    async def optimize_domain(args: ti.OptimizeDomain, ctx: Context) -> Job:
        request = OptimizeRequest(
            goldset=args.domain, optimizer=args.optimizer, budget=args.budget, seed=args.seed,
            train_limit=args.train_limit, dev_limit=args.dev_limit, holdout_limit=args.holdout_limit,
            threads=args.threads, from_usage=args.from_usage,
        )
        try:
            job = jobs.start(request)
        except JobConflict as exc:
            raise ToolError(str(exc)) from exc
        if not args.wait:
            return job
        try:
            seen: Job | None = None
            while job.state == "running":
                job = await anyio.to_thread.run_sync(jobs.wait_change, job.id, seen, 1.0, abandon_on_cancel=True)
                if job != seen:
                    best = f", best {job.best:.3f}" if job.best is not None else ""
                    await ctx.report_progress(job.done, job.total or None, f"{job.phase}: {job.done}"
                                              + (f"/{job.total}" if job.total else "") + best)
                    seen = job
        finally:
            if job.state == "running":
                jobs.cancel(job.id)  # the client cancelled the call
        if job.state == "failed":
            raise ToolError(f"optimization job {job.id} failed: {job.error}")
        return job

    add_model_tool(
        server, "optimize_domain", inputs.OptimizeDomain, optimize_domain, Job,
        "Improve an expert (or the router) with DSPy: compile on train, select on dev, then score the active "
        "and the candidate program on the same holdout items. The candidate becomes active only if it scores "
        "higher; either way a receipt records both scores with intervals and a McNemar test.",
        ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False),
        with_context=True,
    )

    async def optimization_status(args: ti.JobId) -> Job:
        try:
            return jobs.get(args.job_id)
        except KeyError as exc:
            raise ToolError(str(exc.args[0])) from exc

    add_model_tool(server, "optimization_status", ti.JobId, optimization_status, Job,
                   "State, phase, progress and (when finished) the result of an optimization job.", EXACT)

    async def cancel_optimization(args: ti.JobId) -> Job:
        try:
            return jobs.cancel(args.job_id)
        except KeyError as exc:
            raise ToolError(str(exc.args[0])) from exc

    add_model_tool(server, "cancel_optimization", ti.JobId, cancel_optimization, Job,
                   "Cancel a running optimization job; nothing it produced is saved or promoted.",
                   ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False))

    async def rollback_program(args: ti.Rollback) -> ExpertList:
        try:
            service.programs.rollback(args.domain, args.version)
        except ValueError as exc:
            raise ToolError(str(exc)) from exc
        service.reload(args.domain)
        return ExpertList(experts=service.experts(), local_lm=local_status() if local_status else None)

    add_model_tool(server, "rollback_program", inputs.Rollback, rollback_program, ExpertList,
                   "Make an earlier compiled version (or 'base') the active program of an expert.",
                   ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True,
                                   openWorldHint=False))

    async def rate_answer(args: ti.RateAnswer) -> RateResult:
        from sme_mcp.experts.usage_log import UsageError
        from sme_mcp.optimize.feedback import rate_answer as rate

        try:
            return await anyio.to_thread.run_sync(
                lambda: rate(service, args.id, args.verdict, args.correction, args.domain))
        except UsageError as exc:
            raise ToolError(str(exc)) from exc

    add_model_tool(
        server, "rate_answer", inputs.RateAnswer, rate_answer, RateResult,
        "Say whether an ask_expert answer was right, by its id: verdict correct or wrong, optionally the right "
        "answer and, if the question went to the wrong expert, the right domain. A misroute refits the router at "
        "once (no LM call, gated on the router's dev questions); confirmed and corrected answers become train "
        "items for optimize_domain with from_usage. Everything stays in the local usage log.",
        ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False),
    )

    @server.resource("usage://stats", name="usage statistics", mime_type="application/json",
                     description="Questions asked per answering domain, failures, ratings, the share rated wrong, "
                     "misroutes and median latency, from the local usage log")
    def usage_stats() -> str:
        usage = service.usage
        return json.dumps({
            "enabled": usage.enabled, "entries": usage.count(), "max_entries": usage.max_entries,
            "domains": {name: stats.model_dump() for name, stats in usage.stats().items()},
        }, indent=1)

    @server.resource("job://{job_id}", name="optimization job", mime_type="application/json",
                     description="An optimization job's state and result")
    def job_resource(job_id: str) -> str:
        try:
            return jobs.get(job_id).model_dump_json(indent=1)
        except KeyError as exc:
            raise ResourceNotFoundError(str(exc.args[0])) from exc

    # An installed wheel writes its runs under the data dir and reads the project's shipped receipts beside them.
    receipt_dirs = service.settings.receipt_dirs()

    @server.resource("receipt://index", name="receipts", mime_type="application/json",
                     description="Names of all receipts (evaluation and optimization runs)")
    def receipt_index() -> str:
        from sme_mcp.optimize.receipts import list_receipts

        return json.dumps(sorted({name for directory in receipt_dirs for name in list_receipts(directory)}))

    @server.resource("receipt://{name}", name="receipt", mime_type="application/json",
                     description="One receipt: settings, scores with intervals, and per-item results, with errata "
                     "(receipts/errata.jsonl) applied and listed under _errata")
    def receipt(name: str) -> str:
        from sme_mcp.optimize.receipts import read_receipt_with_errata

        for directory in receipt_dirs:
            if directory is not receipt_dirs[-1] and not (directory / name).is_file():
                continue  # read_receipt refuses names that are not plain receipt names in every folder
            try:  # as the README table shows it: a field a bug wrote wrong carries its erratum's correction
                return json.dumps(read_receipt_with_errata(directory, name), indent=1)
            except FileNotFoundError as exc:
                raise ResourceNotFoundError(str(exc)) from exc
        raise ResourceNotFoundError(f"no receipt named {name}")

    # SymPy calls wait for a worker on threads of their own, as many as the pool has workers: a queue of them
    # never holds the threads (40, shared by anyio) that every other tool and resource runs on.
    sympy_threads = anyio.CapacityLimiter(max(1, getattr(service.pool, "size", 2)))

    def sympy_tool(op: str, model: type[BaseModel], description: str) -> None:
        async def run(args: BaseModel) -> SympyResult:
            try:
                result = await anyio.to_thread.run_sync(lambda: service.pool.run(op, **args.model_dump()),
                                                        limiter=sympy_threads)
            except ComputeError as exc:
                raise ToolError(str(exc)) from exc
            except Exception as exc:  # never a bare "Error executing tool": say what failed
                log.exception("%s failed unexpectedly", op)
                message = f"{op} failed unexpectedly ({type(exc).__name__}); the server is still running"
                raise ToolError(message) from exc
            return SympyResult(**result)

        add_model_tool(server, op, model, run, SympyResult, description + " Exact, via SymPy.", EXACT)

    sympy_tool("evaluate", ti.Evaluate, "Evaluate an expression exactly, with its decimal value.")
    sympy_tool("simplify", ti.Simplify, "Simplify an expression.")
    sympy_tool("expand", ti.Expand, "Expand products and powers in an expression.")
    sympy_tool("factor", ti.Factor, "Factor a polynomial, or an integer into primes.")
    sympy_tool("solve", ti.Solve, "Solve an equation, a system of equations, or one inequality.")
    sympy_tool("differentiate", ti.Differentiate, "Differentiate an expression (any order).")
    sympy_tool("integrate", ti.Integrate, "Integrate an expression, indefinite or definite.")
    sympy_tool("limit", ti.Limit, "Limit of an expression at a point or at infinity.")
    sympy_tool("series", ti.Series, "Taylor/Laurent series of an expression around a point.")
    sympy_tool("summation", ti.Summation, "Sum an expression over an index range, finite or infinite.")
    sympy_tool("matrix_determinant", ti.MatrixInput, "Determinant of a square matrix.")
    sympy_tool("matrix_inverse", ti.MatrixInput, "Inverse of a square matrix.")
    sympy_tool("matrix_eigenvalues", ti.MatrixInput, "Eigenvalues of a square matrix, with multiplicities.")

    from sme_mcp.server.prompts import register_prompts
    from sme_mcp.server.rag_tools import register_rag_tools

    register_rag_tools(server, lambda: service.documents, allowed_roots=service.settings.client_files.ingest_roots,
                       walk_limits=service.settings.client_files.walk_limits())
    register_prompts(server, service, jobs)
    return server


class _NoInput(BaseModel):
    pass


HEARTBEAT_S = 3.0  # progress at least this often, so clients that reset their timeout on progress never fire it


async def answer_with_progress(service: ExpertService, args: ti.AskExpert, ctx: Context | None) -> ExpertAnswer:
    """Runs `service.ask` in a worker thread, sending progress until it ends, and stopping it on cancel.

    The first notification goes out at once, then one on every stage, model call and tool call,
    and a heartbeat every `HEARTBEAT_S` seconds with the elapsed time. When the client cancels,
    the trace's cancel flag stops the work at its next model or tool call, so an abandoned
    question does not keep the local model busy for the next one.
    """
    token = anyio.lowlevel.current_token()
    trace = AnswerTrace(progress=lambda message: from_thread(message))
    sent = 0
    lock = threading.Lock()

    async def notify(message: str) -> None:
        nonlocal sent
        if ctx is None:
            return
        with lock:
            sent += 1
            n = sent
        elapsed = time.perf_counter() - trace.started
        with contextlib.suppress(Exception):  # a client gone mid-answer must not fail the answer
            await ctx.report_progress(n, None, f"{message} ({elapsed:.0f} s)")

    def from_thread(message: str) -> None:
        with contextlib.suppress(Exception):
            anyio.from_thread.run(notify, message, token=token)

    async def heartbeat() -> None:
        while True:
            await anyio.sleep(HEARTBEAT_S)
            await notify(trace.message)

    def work() -> tuple[ExpertAnswer | None, BaseException | None]:
        try:
            return service.ask_logged(args.question, args.domain, trace=trace, client="mcp"), None
        except (Exception, AnswerCancelled) as exc:
            return None, exc

    await notify("received")
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(heartbeat)
            answer, failure = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
            group.cancel_scope.cancel()
    finally:
        trace.cancel.set()  # a cancelled call stops its worker at the next model or tool call
    if answer is not None:
        return answer
    if isinstance(failure, InvalidQuestion | NoBackendError | ComputeError):
        raise ToolError(str(failure)) from failure
    if isinstance(failure, AnswerCancelled):
        raise ToolError("the question was cancelled") from failure
    log.error("ask_expert failed", exc_info=failure)
    raise ToolError(describe_failure(failure)) from failure  # never a bare "Error executing tool"


def describe_failure(exc: BaseException) -> str:
    """A message for an unexpected failure of the question path: what failed and what to do."""
    name = type(exc).__name__
    if any(t.__name__ == "AdapterParseError" for t in type(exc).__mro__):
        return ("The local model's output could not be parsed into an answer (a small model does this "
                "sometimes). Ask again, rephrase the question, or name the domain (math, code, general).")
    return (f"The expert failed unexpectedly ({name}: {str(exc)[:200]}). The server is still running; "
            "ask again, or name the domain. The server log has the details.")
