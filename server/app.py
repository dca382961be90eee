"""The MCP server: the expert tools as typed functions under the SDK's `@server.tool()`, beside the SymPy,
document and prompt registrations.

No `from __future__ import annotations` here: the tools' `domain` types are built from the registry at run
time, inside `build_server`, and the SDK reads each tool's annotations as the objects they are.
"""

import contextlib
import functools
import json
import logging
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from sme_mcp.experts.answer import ExpertAnswer
from sme_mcp.experts.answer_trace import AnswerCancelled, AnswerTrace
from sme_mcp.experts.service import ExpertInfo, ExpertService
from sme_mcp.optimize.evaluate import EvalReport
from sme_mcp.optimize.feedback import RateResult
from sme_mcp.optimize.jobs import Job, JobManager
from sme_mcp.optimize.optimizer import OptimizeRequest, run_optimization
from sme_mcp.server import tool_inputs as ti
from sme_mcp.server.local_lm import LocalServer
from sme_mcp.server.sympy_tools import EXACT, register_sympy_tools
from sme_mcp.server.tool_errors import reports_errors
from sme_mcp.tools.errors import SmeError

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


class ExpertList(BaseModel):
    experts: list[ExpertInfo]
    local_lm: dict[str, Any] | None = Field(default=None, description="State of the supervised llama-server")


def build_server(service: ExpertService, local: LocalServer | None = None) -> MCPServer:
    """Builds the MCP server around one `ExpertService` (shared with the CLI).

    Args:
        service: The experts, router, programs and usage log every tool answers through.
        local: The supervised llama-server, whose state `list_experts` reports; None when disabled.

    Returns:
        The server, with every tool, resource and prompt registered.

    Example:
        >>> from mcp import Client  # doctest: +SKIP
        >>> async with Client(build_server(ExpertService(Settings()))) as client:  # doctest: +SKIP
        ...     (await client.call_tool("differentiate", {"expression": "x**3"})).structured_content
        {'result': '3*x**2', 'latex': '3 x^{2}', 'numeric': None}
    """
    names = ti.ExpertNames(service.registry.names)
    experts = names.experts
    Expert, Program = names.Expert, names.Program  # noqa: N806 - types, named as types
    server = MCPServer("sme-mcp", version=VERSION, instructions=instructions(experts))
    local_status = local.status if local is not None else None

    def expert_list() -> ExpertList:
        return ExpertList(experts=service.experts(), local_lm=local_status() if local_status else None)

    @server.tool(
        description=f"Answer a question with an expert ({', '.join(experts)}; DSPy programs on a local LM). "
        "Exact math requests are answered by SymPy at once; clear questions are routed without the LM. "
        "Sends progress notifications (stage, model and tool calls) at least every few seconds and stops "
        "when cancelled. Returns the answer with the domain, how it was routed, confidence, reasoning, the "
        "backend that served it, latency, tools used and its cost (LM calls, tokens, seconds per stage).",
        annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False, destructiveHint=False),
    )
    @reports_errors
    async def ask_expert(
        ctx: Context,
        question: ti.Question,
        domain: Annotated[Expert | None, Field(description="Expert to use; omit to let the router choose")] = None,
    ) -> ExpertAnswer:
        return await answer_with_progress(service, question, domain, ctx)

    @server.tool(
        description="List the experts (and the router): description, DSPy module, active program version, "
        "holdout score and backend chain; plus the state of the local LM server.",
        annotations=EXACT,
    )
    @reports_errors
    async def list_experts() -> ExpertList:
        return expert_list()

    @server.tool(
        description="Score the active program of an expert (or the router) on a gold set split, or on any JSONL "
        "file in the gold-set format. Sends progress notifications per item, honours cancellation, writes a "
        "receipt (readable as resource receipt://NAME) and returns score, Wilson 95% interval, threshold and "
        "pass/fail.",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False,
                                    openWorldHint=False),
    )
    @reports_errors
    async def run_eval(
        ctx: Context,
        domain: Annotated[Program, Field(description="Expert (or the router) to score")],
        split: ti.Split = "holdout",
        limit: ti.Limit = None,
        threads: ti.Threads = 1,
        goldset_path: ti.GoldsetPath = None,
        write_receipt: ti.WriteReceipt = True,
    ) -> EvalReport:
        from sme_mcp.optimize.evaluate import run_eval as evaluate
        from sme_mcp.optimize.goldsets import check_client_goldset

        token = anyio.lowlevel.current_token()
        cancel = threading.Event()

        def progress(done: int, total: int, correct: int) -> None:
            message = f"{done}/{total} items, {correct} correct"
            with contextlib.suppress(Exception):  # a client gone mid-run must not fail the eval
                anyio.from_thread.run(functools.partial(ctx.report_progress, done, total, message), token=token)

        def work() -> EvalReport:
            # A client's file must resolve inside the allowed gold-set folders and pass the bounded, content-free
            # validation before the evaluation reads it (SME_CLIENT_FILES__GOLDSET_ROOTS).
            path: Path | None = check_client_goldset(service.settings, goldset_path) if goldset_path else None
            return evaluate(
                service, domain, split, path=path, limit=limit, threads=threads, progress=progress, cancel=cancel,
                lm_info=local.model_info() if local is not None else None, write=write_receipt,
            )[0]

        try:
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except OSError as exc:  # e.g. the receipts dir is not writable; never the gold set's content
            log.exception("run_eval failed")
            raise ToolError(f"run_eval failed: {exc.strerror or type(exc).__name__} ({exc.filename or 'no file'}); "
                            "check that the receipts dir (SME_RECEIPTS_DIR) is writable, or pass "
                            "write_receipt=false") from exc
        finally:
            cancel.set()  # on client cancellation the worker thread stops after its in-flight items

    jobs = JobManager(lambda req, progress, cancel: run_optimization(
        service, req, progress, cancel, lm_info=local.model_info() if local is not None else None))

    @server.tool(
        description="Improve an expert (or the router) with DSPy: compile on train, select on dev, then score the "
        "active and the candidate program on the same holdout items. The candidate becomes active only if it "
        "scores higher; either way a receipt records both scores with intervals and a McNemar test.",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False,
                                    openWorldHint=False),
    )
    @reports_errors
    async def optimize_domain(
        ctx: Context,
        domain: Annotated[Program, Field(description="Program to optimize")],
        optimizer: ti.Optimizer = "bootstrap",
        budget: ti.Budget = "light",
        train_limit: ti.TrainLimit = None,
        dev_limit: ti.DevLimit = None,
        holdout_limit: ti.HoldoutLimit = None,
        seed: ti.Seed = 0,
        threads: ti.Threads = 1,
        from_usage: ti.FromUsage = False,
        wait: ti.Wait = True,
    ) -> Job:
        job = jobs.start(OptimizeRequest(
            goldset=domain, optimizer=optimizer, budget=budget, seed=seed, train_limit=train_limit,
            dev_limit=dev_limit, holdout_limit=holdout_limit, threads=threads, from_usage=from_usage,
        ))
        if not wait:
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

    @server.tool(description="State, phase, progress and (when finished) the result of an optimization job.",
                 annotations=EXACT)
    @reports_errors
    async def optimization_status(job_id: ti.JobId) -> Job:
        return jobs.get(job_id)

    @server.tool(description="Cancel a running optimization job; nothing it produced is saved or promoted.",
                 annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False))
    @reports_errors
    async def cancel_optimization(job_id: ti.JobId) -> Job:
        return jobs.cancel(job_id)

    @server.tool(description="Make an earlier compiled version (or 'base') the active program of an expert.",
                 annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True,
                                             openWorldHint=False))
    @reports_errors
    async def rollback_program(domain: Program, version: ti.Version) -> ExpertList:
        service.programs.rollback(domain, version)
        service.reload(domain)
        return expert_list()

    @server.tool(
        description="Say whether an ask_expert answer was right, by its id: verdict correct or wrong, optionally "
        "the right answer and, if the question went to the wrong expert, the right domain. A misroute refits the "
        "router at once (no LM call, gated on the router's dev questions); confirmed and corrected answers become "
        "train items for optimize_domain with from_usage. Everything stays in the local usage log.",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True,
                                    openWorldHint=False),
    )
    @reports_errors
    async def rate_answer(
        id: ti.AnswerId,  # noqa: A002 - the answer's field is called id
        verdict: Annotated[ti.Verdict, Field(description="correct or wrong")],
        correction: ti.Correction = None,
        domain: Annotated[Expert | None, Field(
            description="The expert the question should have gone to, when it went to the wrong one")] = None,
    ) -> RateResult:
        from sme_mcp.optimize.feedback import rate_answer as rate

        return await anyio.to_thread.run_sync(lambda: rate(service, id, verdict, correction, domain))

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

    register_sympy_tools(server, service.pool)

    from sme_mcp.server.prompts import register_prompts
    from sme_mcp.server.rag_tools import register_rag_tools

    register_rag_tools(server, lambda: service.documents, allowed_roots=service.settings.client_files.ingest_roots,
                       walk_limits=service.settings.client_files.walk_limits())
    register_prompts(server, service, jobs)
    return server


HEARTBEAT_S = 3.0  # progress at least this often, so clients that reset their timeout on progress never fire it


async def answer_with_progress(service: ExpertService, question: str, domain: str | None,
                               ctx: Context | None) -> ExpertAnswer:
    """Runs `service.ask` in a worker thread, sending progress until it ends, and stopping it on cancel.

    The first notification goes out at once, then one on every stage, model call and tool call,
    and a heartbeat every `HEARTBEAT_S` seconds with the elapsed time. When the client cancels,
    the trace's cancel flag stops the work at its next model or tool call, so an abandoned
    question does not keep the local model busy for the next one.

    Args:
        service: The service that answers.
        question: The question, as the client sent it.
        domain: The expert to use; None lets the router choose.
        ctx: The request's context, for progress; None sends none.

    Returns:
        The answer.

    Raises:
        SmeError: What the user can fix (a bad question, no backend, a failed exact computation).
        ToolError: The question was cancelled, or the expert failed unexpectedly (the message says what to do).
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
            return service.ask_logged(question, domain, trace=trace, client="mcp"), None
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
    if isinstance(failure, SmeError):
        raise failure
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
