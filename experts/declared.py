"""Experts declared in TOML files: no Python, one file plus one gold set.

`SME_EXPERT_FILES` names the files (a JSON list of paths). Each declares one expert in an `[expert]`
table, or several in `[[expert]]` tables; relative paths in a file are relative to that file. Keys:

```toml
[expert]
name = "science"                       # its domain: ask_expert(domain="science"), gold set and programs
description = "Multiple-choice science questions; answers with the option letter"
instructions = "Answer the multiple-choice question. Reply with the letter of the correct option."
module = "chain_of_thought"            # predict | chain_of_thought | react
metric = "multiple_choice"             # see sme_mcp.optimize.scoring.METRICS
threshold = 0.3                        # eval gate: minimum holdout score
goldset = "../goldsets/science"        # folder with train.jsonl, dev.jsonl, holdout.jsonl
question = "the question with its lettered options"   # the input's description (optional)
outputs = [{ name = "answer", desc = "the letter of the correct option, e.g. B" }]  # first one is the answer
retrieval = { collection = "general", k = 3 }          # optional: passages as a `context` input
max_iters = 5                          # react only
chain = [{ model = "local", max_tokens = 512 }]        # optional; default: the general expert's chain

[[expert.mcp_servers]]                 # react only: tools from other MCP servers
name = "time"
command = ["python", "-m", "mcp_server_time", "--local-timezone", "UTC"]   # stdio; or url = "http://..."
tools = ["convert_time"]               # the tools the expert may call
timeout = 30
```

Declarations come only from these files, which the user names in the server's settings: no MCP client
can add or change an expert, or make the server start a command. A broken declaration stops the server
at start-up with a `RegistryError` that names the file and what is wrong.

Example:
    >>> specs = load_declarations([Path("experts/examples/science.toml")], Settings())  # doctest: +SKIP
    >>> specs[0].name, specs[0].metric  # doctest: +SKIP
    ('science', 'multiple_choice')
"""

from __future__ import annotations

import logging
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sme_mcp.config.settings import LMSpec
from sme_mcp.experts.registry import ExpertSpec, RegistryError

if TYPE_CHECKING:
    import dspy

    from sme_mcp.config.settings import Settings
    from sme_mcp.experts.mcp_tools import MCPToolServer
    from sme_mcp.experts.service import ExpertService

log = logging.getLogger(__name__)
MAX_DECLARATION_BYTES = 1_000_000
OUTPUT_TYPES: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool, "list[str]": list[str]}
ModuleKind = Literal["predict", "chain_of_thought", "react"]
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
EXAMPLE_PREFIX = "example:"  # SME_EXPERT_FILES='["example:science"]' names a shipped example by its name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a silently ignored setting


class OutputField(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    desc: str = ""
    type: Literal["str", "int", "float", "bool", "list[str]"] = "str"


class Retrieval(_Strict):
    collection: str = Field(min_length=1, max_length=64)
    k: int = Field(default=3, ge=1, le=20)


class MCPServerDeclaration(_Strict):
    name: str = Field(min_length=1, max_length=64)
    command: list[str] | None = Field(default=None, min_length=1)
    url: str | None = Field(default=None, pattern=r"^https?://")
    tools: list[str] = Field(min_length=1, description="The tools the expert may call")
    env: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerDeclaration:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of command (a stdio server) and url (a Streamable HTTP server)")
        return self


class ExpertDeclaration(_Strict):
    name: str
    description: str = Field(min_length=1, max_length=1000)
    instructions: str = Field(min_length=1, max_length=20_000)
    module: ModuleKind = "chain_of_thought"
    metric: str
    threshold: float = Field(ge=0.0, le=1.0)
    goldset: Path
    question: str = Field(default="", max_length=1000, description="The question input's description")
    outputs: list[OutputField] = Field(default_factory=lambda: [OutputField(name="answer")], min_length=1)
    retrieval: Retrieval | None = None
    max_iters: int = Field(default=5, ge=1, le=20)
    chain: list[LMSpec] | None = None
    mcp_servers: list[MCPServerDeclaration] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ExpertDeclaration:
        names = [o.name for o in self.outputs]
        if len(set(names)) != len(names):
            raise ValueError("two outputs have the same name")
        if {"question", "context"} & set(names):
            raise ValueError("'question' and 'context' are inputs; name the outputs otherwise")
        if self.mcp_servers and self.module != "react":
            raise ValueError("mcp_servers give tools to a ReAct module; set module = \"react\"")
        if self.module == "react" and not self.mcp_servers:
            raise ValueError("a react module needs tools: declare [[expert.mcp_servers]]")
        tools = [t for s in self.mcp_servers for t in s.tools]
        if len(set(tools)) != len(tools):
            raise ValueError("two MCP servers offer a tool of the same name; the model could not tell them apart")
        return self


def _signature(decl: ExpertDeclaration) -> type[dspy.Signature]:
    import dspy

    fields: dict[str, Any] = {}
    if decl.retrieval is not None:
        fields["context"] = (list[str], dspy.InputField(desc="retrieved passages, possibly irrelevant; may be empty"))
    fields["question"] = (str, dspy.InputField(desc=decl.question) if decl.question else dspy.InputField())
    for out in decl.outputs:
        fields[out.name] = (OUTPUT_TYPES[out.type], dspy.OutputField(desc=out.desc) if out.desc else dspy.OutputField())
    return dspy.Signature(fields, decl.instructions)


def _declared_expert_class() -> type:
    import dspy

    from sme_mcp.experts.modules import LoopSafeReAct

    class DeclaredExpert(dspy.Module):
        """A declared expert's program: Predict, ChainOfThought or ReAct over its declared signature.

        The prediction's `answer` is the first declared output (the others follow it as "name: value"
        lines), with `reasoning`, a ReAct `trajectory` and the `sources` of retrieved passages.
        """

        def __init__(self, decl: ExpertDeclaration, service: ExpertService, tools: list[Any]) -> None:
            super().__init__()
            signature = _signature(decl)
            self.outputs = [o.name for o in decl.outputs]
            self.retrieval = decl.retrieval
            self._search = service.documents.search if decl.retrieval is not None else None
            self._min_similarity = service.settings.retrieval_min_similarity
            self._pool = service.settings.retrieval_pool
            self._cut = (service.settings.retrieval_keep_sentences, service.settings.retrieval_sentence_window)
            if decl.module == "predict":
                self.program = dspy.Predict(signature)
            elif decl.module == "chain_of_thought":
                self.program = dspy.ChainOfThought(signature)
            else:
                self.program = LoopSafeReAct(signature, tools=tools, max_iters=decl.max_iters)

        def forward(self, question: str) -> dspy.Prediction:
            inputs: dict[str, Any] = {"question": question}
            sources: list[dict[str, str]] = []
            if self.retrieval is not None and self._search is not None:
                from sme_mcp.experts.general_rag import retrieve_context

                collection, search = self.retrieval.collection, self._search
                inputs["context"], sources = retrieve_context(
                    lambda q, k: search(collection, q, k), question, self.retrieval.k, self._min_similarity,
                    self._pool, *self._cut)
            pred = self.program(**inputs)
            first, *rest = self.outputs
            answer = str(getattr(pred, first, "") or "").strip()
            extra = [f"{name}: {getattr(pred, name, '')}" for name in rest]
            verification = None
            if self.retrieval is not None:
                from sme_mcp.experts.grounding import check_grounding

                verification = check_grounding(answer, inputs.get("context") or [], question)
            return dspy.Prediction(answer="\n".join([answer, *extra]) if extra else answer,
                                   reasoning=getattr(pred, "reasoning", None),
                                   trajectory=getattr(pred, "trajectory", None), sources=sources,
                                   verification=verification)

    return DeclaredExpert


def _summary(decl: ExpertDeclaration) -> str:
    kind = {"predict": "Predict", "chain_of_thought": "ChainOfThought", "react": "ReAct"}[decl.module]
    parts = [f"{kind}(declared signature: question -> {', '.join(o.name for o in decl.outputs)})"]
    if decl.retrieval:
        parts.append(f"retrieval from {decl.retrieval.collection!r} (k={decl.retrieval.k})")
    for server in decl.mcp_servers:
        parts.append(f"tools {', '.join(server.tools)} from MCP server {server.name!r}")
    return " + ".join(parts)


def spec_from_declaration(decl: ExpertDeclaration, source: Path) -> ExpertSpec:
    """The registry entry of one declaration (its MCP servers connect when the module is first built)."""
    from sme_mcp.experts.mcp_tools import MCPToolServer

    servers: list[MCPToolServer] = []
    for s in decl.mcp_servers:
        command = [sys.executable if part == "python" and i == 0 else part for i, part in enumerate(s.command or [])]
        servers.append(MCPToolServer(decl.name, s.name, command=command or None, url=s.url, allowed_tools=s.tools,
                                     env=s.env, timeout=s.timeout))

    def build(service: ExpertService) -> dspy.Module:
        tools = [tool for server in servers for tool in server.dspy_tools()]
        return _declared_expert_class()(decl, service, tools)

    def close() -> None:
        for server in servers:
            server.close()

    def receipt_settings(service: ExpertService) -> dict[str, Any]:
        return {"declaration": str(source), "module": decl.module, "instructions": decl.instructions,
                "retrieval": decl.retrieval.model_dump() if decl.retrieval else None,
                "mcp_servers": [{"name": s.name, "command": s.command, "url": s.url, "tools": s.tools}
                                for s in decl.mcp_servers]}

    goldset = decl.goldset if decl.goldset.is_absolute() else (source.parent / decl.goldset)
    return ExpertSpec(
        name=decl.name, description=decl.description, module=_summary(decl), build=build, metric=decl.metric,
        threshold=decl.threshold, goldset_dir=goldset.resolve(), teaches_router=True, chain=decl.chain,
        source=str(source), settings_for_receipt=receipt_settings, close=close,
    )


def read_declarations(path: Path) -> list[ExpertDeclaration]:
    """The declarations in one TOML file.

    Raises:
        RegistryError: The file is missing, too large, not TOML, or a declaration is malformed.
    """
    try:
        if path.stat().st_size > MAX_DECLARATION_BYTES:
            raise RegistryError(f"expert file {path} is larger than {MAX_DECLARATION_BYTES} bytes")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"expert file {path} does not exist (SME_EXPERT_FILES names it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"expert file {path} cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"expert file {path} is not valid TOML: {exc}") from exc
    raw = data.get("expert")
    if raw is None or set(data) - {"expert"}:
        raise RegistryError(f"expert file {path}: declare each expert in an [expert] or [[expert]] table (found "
                            f"top-level keys {', '.join(sorted(data)) or 'none'})")
    out = []
    for i, table in enumerate(raw if isinstance(raw, list) else [raw]):
        try:
            out.append(ExpertDeclaration.model_validate(table))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'expert'}: {e['msg']}"
                                 for e in exc.errors(include_input=False))
            name = table.get("name", f"#{i + 1}") if isinstance(table, dict) else f"#{i + 1}"
            raise RegistryError(f"expert file {path}, expert {name!r}: {problems}") from None
    return out


def load_declarations(paths: list[Path], settings: Settings) -> list[ExpertSpec]:
    """Registry entries for every expert declared in `paths`, in order.

    Raises:
        RegistryError: A file or declaration is broken (the message names it).
    """
    specs = []
    for path in paths:
        if str(path).startswith(EXAMPLE_PREFIX):  # a shipped example, wherever the package is installed
            name = str(path).removeprefix(EXAMPLE_PREFIX)
            path = EXAMPLES_DIR / f"{name}.toml"
            if not path.is_file():
                shipped = ", ".join(sorted(EXAMPLE_PREFIX + p.stem for p in EXAMPLES_DIR.glob("*.toml")))
                raise RegistryError(f"no shipped example expert {name!r}; there are {shipped}")
        path = Path(path).expanduser().resolve()
        for decl in read_declarations(path):
            specs.append(spec_from_declaration(decl, path))
    return specs
