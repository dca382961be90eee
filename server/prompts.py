"""MCP prompts for the common workflows, the `program://` resource, and argument completion for all of them.

Prompts (each renders one user message that tells the client's model which tools to call, in order):
`ask_step_by_step`, `review_code`, `evaluate_then_optimize`, `try_program_version`, `index_documents`.
Completion (`completion/complete`) offers domains, gold sets, program versions (of the domain already
chosen), document collections, optimizers and budgets for those prompt arguments, and receipt names,
job ids, program names and versions for the resource templates.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, Completion, CompletionArgument, CompletionContext, PromptReference
from pydantic import Field

if TYPE_CHECKING:
    from sme_mcp.experts.service import ExpertService
    from sme_mcp.optimize.jobs import JobManager

log = logging.getLogger(__name__)

OPTIMIZERS = ("bootstrap", "bootstrap_rs", "mipro", "gepa")
BUDGETS = ("light", "medium", "heavy")
SPLITS = ("train", "dev", "holdout")
MAX_VALUES = 100  # the most values one completion may return (MCP spec)


def _choice(argument: str, value: str, allowed: Iterable[str], *, optional: bool = False) -> str:
    """`value` when it is one of `allowed` (or empty and optional); an invalid-params error naming them if not."""
    allowed = list(allowed)
    if (optional and value == "") or value in allowed:
        return value
    raise MCPError(INVALID_PARAMS, f"{argument} must be one of {', '.join(allowed)}"
                   + (" (or empty)" if optional else "") + f"; got {value!r}")


def register_prompts(server: MCPServer, service: ExpertService, jobs: JobManager) -> None:
    """Adds the workflow prompts, the `program://{name}/{version}` resource and the completion handler."""

    DOMAINS, ROLES = service.registry.names, service.registry.roles  # noqa: N806 - the registry's, fixed at start

    def goldsets() -> list[str]:
        root = service.settings.goldsets_dir
        return sorted(name for name in ROLES if (service.registry.goldset_dir(name, root) / "holdout.jsonl").is_file())

    def versions(name: str) -> list[str]:
        return ["base", *(v.version for v in service.programs.versions(name))]

    @server.prompt(title="Ask an expert, step by step")
    def ask_step_by_step(
        question: Annotated[str, Field(description="The question to answer")],
        domain: Annotated[str, Field(description="An expert's name (list_experts); empty: let the router choose")] = "",
    ) -> str:
        """Answer a question with the experts, showing each step and checking exact math with SymPy."""
        domain = _choice("domain", domain, DOMAINS, optional=True)
        call = {"question": question, **({"domain": domain} if domain else {})}
        return (
            "Answer the question below step by step.\n"
            f"1. Call the tool ask_expert with {json.dumps(call)}. It reports the domain it used, how it was "
            "routed, its reasoning and what it verified.\n"
            "2. Lay the answer out as numbered steps, using the expert's reasoning.\n"
            "3. Check every symbolic or numeric step with the SymPy tools (evaluate, simplify, solve, "
            "differentiate, integrate, limit, series, summation, matrix_*), and say which steps they confirmed.\n"
            "4. If a check disagrees with the expert, say so and give the checked result.\n\n"
            f"Question: {question}"
        )

    @server.prompt(title="Review code with the code expert")
    def review_code(
        code: Annotated[str, Field(description="The code to review")],
        focus: Annotated[str, Field(description="What to look at most, e.g. 'edge cases' or 'performance'")] = "",
    ) -> str:
        """Review code with the code expert, which runs what it proposes in a sandbox before answering."""
        ask = ("Review this code: list its bugs and unhandled edge cases"
               + (f", paying most attention to {focus}" if focus else "")
               + ", then give a corrected version with assert-based tests.\n\n" + code)
        return (
            "Review the code below with the code expert.\n"
            f"1. Call the tool ask_expert with {json.dumps({'question': ask, 'domain': 'code'})}.\n"
            "2. Report the problems it found, each with the line it concerns, and its corrected code.\n"
            "3. Quote its `verification` field: which tests ran in the sandbox and how they came out. Do not "
            "call code correct that no test ran.\n\n"
            f"```\n{code}\n```"
        )

    @server.prompt(title="Evaluate, then optimize a domain")
    def evaluate_then_optimize(
        goldset: Annotated[str, Field(description="The gold set (and program): math, code, general or router")],
        optimizer: Annotated[str, Field(description="bootstrap, bootstrap_rs, mipro or gepa")] = "bootstrap",
        budget: Annotated[str, Field(description="light, medium or heavy")] = "light",
    ) -> str:
        """Score the active program, optimize it, and keep the result only if it scores higher."""
        goldset = _choice("goldset", goldset, goldsets())
        optimizer = _choice("optimizer", optimizer, OPTIMIZERS)
        budget = _choice("budget", budget, BUDGETS)
        return (
            f"Evaluate, then optimize, the {goldset} program.\n"
            f"1. Call list_experts and note the active program version of {goldset} and its holdout score.\n"
            f"2. Call run_eval with {json.dumps({'domain': goldset, 'split': 'dev'})} and report the score with "
            "its 95% interval.\n"
            f"3. Call optimize_domain with {json.dumps({'domain': goldset, 'optimizer': optimizer, 'budget': budget})}"
            ". It returns a job; poll optimization_status with its job_id until the state is no longer running "
            "(or pass wait=true).\n"
            "4. Report the baseline and candidate holdout scores with their intervals, the McNemar p-value, and "
            "whether the candidate was promoted (only a strictly higher gate score promotes it).\n"
            "5. If it was promoted but scores lower on holdout than the baseline, say so and offer "
            f"rollback_program with {json.dumps({'domain': goldset, 'version': '<the previous version>'})}."
        )

    @server.prompt(title="Try another program version")
    def try_program_version(
        domain: Annotated[str, Field(description="router or an expert's name (list_experts)")],
        version: Annotated[str, Field(description="A compiled version such as v1, or base")],
    ) -> str:
        """Switch a domain to another compiled program version and score it against the one active now."""
        domain = _choice("domain", domain, ROLES)
        version = _choice("version", version, versions(domain))
        return (
            f"Compare the {domain} program's version {version} with the one active now.\n"
            f"1. Call list_experts and note the active version of {domain}.\n"
            f"2. Call run_eval with {json.dumps({'domain': domain, 'split': 'dev'})}.\n"
            f"3. Call rollback_program with {json.dumps({'domain': domain, 'version': version})}, then run_eval "
            "again with the same arguments.\n"
            "4. Report both scores with their intervals; if the new one is not higher, switch back with "
            "rollback_program to the version noted in step 1."
        )

    @server.prompt(title="Index documents, then ask about them")
    def index_documents(
        paths: Annotated[str, Field(description="Files or folders to index, one per line")],
        collection: Annotated[str, Field(description="The collection to add them to (the general expert "
                                                     "searches 'general')")] = "general",
    ) -> str:
        """Index files into a document collection and confirm what was indexed."""
        names = [p.strip() for p in paths.splitlines() if p.strip()]
        if not names:
            raise MCPError(INVALID_PARAMS, "paths must name at least one file or folder, one per line")
        return (
            f"1. Call ingest_documents with {json.dumps({'paths': names, 'collection': collection})}.\n"
            "2. Report what it added, updated, left unchanged and skipped (with the reasons).\n"
            "3. Call list_collections and report the collection's files and chunks."
            + ("\n4. Questions for the general expert (ask_expert, domain general) are answered from the "
               "'general' collection." if collection == "general" else
               f"\n4. Note: the general expert searches only 'general', not {collection!r}.")
        )

    @server.resource("program://{name}/{version}", name="program version", mime_type="application/json",
                     description="A compiled program version's record: status, gate and holdout scores, optimizer, "
                     "receipt")
    def program_resource(name: str, version: str) -> str:
        if name not in ROLES:
            raise ResourceNotFoundError(f"no program named {name!r}; programs are {', '.join(ROLES)}")
        active = service.programs.active(name)
        if version == "base":
            return json.dumps({"name": name, "version": "base", "status": "uncompiled (the program as written)",
                               "active": active is None}, indent=1)
        found = service.programs.get(name, version)
        if found is None:
            raise ResourceNotFoundError(f"{name} has no version {version!r}; it has {', '.join(versions(name))}")
        return json.dumps({**found.model_dump(), "active": active is not None and active.version == version},
                          indent=1)

    def collections() -> list[str]:
        try:
            return sorted({"general", *(c.name for c in service.documents.collections())})
        except Exception as exc:  # an index that cannot be read must not break completion
            log.warning("collections unknown for completion: %s", exc)
            return ["general"]

    def receipts() -> list[str]:
        from sme_mcp.optimize.receipts import list_receipts

        return sorted({n for d in service.settings.receipt_dirs() for n in list_receipts(d)}, reverse=True)

    def versions_of(given: dict[str, str]) -> list[str]:
        name = given.get("domain") or given.get("name")
        if name in ROLES:
            return versions(name)
        return sorted({v for role in ROLES for v in versions(role)})

    # Prompt arguments by name; every prompt uses a name for one kind of value only.
    by_argument: dict[str, Callable[[dict[str, str]], Iterable[str]]] = {
        "domain": lambda given: ROLES, "goldset": lambda given: goldsets(), "version": versions_of,
        "collection": lambda given: collections(), "optimizer": lambda given: OPTIMIZERS,
        "budget": lambda given: BUDGETS, "split": lambda given: SPLITS,
    }
    prompt_domains = {"ask_step_by_step": DOMAINS}  # the router is no domain to ask
    by_template: dict[tuple[str, str], Callable[[dict[str, str]], Iterable[str]]] = {
        ("receipt://{name}", "name"): lambda given: receipts(),
        ("job://{job_id}", "job_id"): lambda given: [job.id for job in jobs.list()],
        ("program://{name}/{version}", "name"): lambda given: ROLES,
        ("program://{name}/{version}", "version"): versions_of,
    }

    @server.completion()
    async def complete(ref: Any, argument: CompletionArgument, context: CompletionContext | None) -> Completion | None:
        given = dict(context.arguments or {}) if context is not None else {}
        if isinstance(ref, PromptReference):
            source = by_argument.get(argument.name)
            if ref.name in prompt_domains and argument.name == "domain":
                source = lambda given: prompt_domains[ref.name]  # noqa: E731
        else:
            source = by_template.get((getattr(ref, "uri", ""), argument.name))
        if source is None:
            return None
        values = await anyio.to_thread.run_sync(lambda: list(source(given)))  # may read the index or the disk
        matching = [v for v in values if v.lower().startswith(argument.value.lower())]
        return Completion(values=matching[:MAX_VALUES], total=len(matching), has_more=len(matching) > MAX_VALUES)
