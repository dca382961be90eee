"""Settings for the whole service, read from `SME_*` environment variables and `.env`.

Nested fields use `__`: `SME_LOCAL__THREADS=2`, `SME_MATH__CHAIN='[{"model": "openai/gpt-4o-mini",
"api_key_env": "OPENAI_API_KEY"}]'`, `SME_HTTP__TOKEN=...`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from sme_mcp.tools.file_access import WalkLimits

# An expert's name. Which names exist is the expert registry's to say (experts/registry.py): the built-in
# experts below, then those the user declares in SME_EXPERT_FILES.
Domain = str
Role = str  # "router" or an expert's name
DOMAINS: tuple[str, ...] = ("math", "code", "general")
"""The built-in experts (a service's `registry.names` adds the declared ones)."""
ROLES: tuple[str, ...] = ("router", "math", "code", "general")

LOCAL = "local"
PROJECT_DIR = Path(__file__).resolve().parents[1]
"""The folder above the package folders: the checkout when run from one, else the installed `sme_mcp` package.

A wheel carries the shipped data at the same relative paths as the checkout (pyproject.toml's package
data), so `PROJECT_DIR / "goldsets"`, `"compiled"`, `"receipts"` and `"docs/demo_corpus"` exist either way.
"""
REPO_DIR = PROJECT_DIR  # the name the tests and older code use; only a checkout is a repository
IN_CHECKOUT = (PROJECT_DIR / "pyproject.toml").is_file() and (PROJECT_DIR / "experts").is_dir()
"""True when running from a source checkout (editable install or the folder itself), False from a wheel."""
GOLDSETS_DIR = PROJECT_DIR / "goldsets"
COMPILED_DIR = PROJECT_DIR / "compiled"
SHIPPED_RECEIPTS_DIR = PROJECT_DIR / "receipts"
"""The project's own receipts (read-only in a wheel): which holdout items chose the shipped programs."""
DEMO_CORPUS_DIR = PROJECT_DIR / "docs" / "demo_corpus"


class LMSpec(BaseModel):
    """One LM backend. `model="local"` is the llama-server this process supervises."""

    model: str = LOCAL
    api_base: str | None = None
    more_api_bases: list[str] = Field(
        default_factory=list, description="Further OpenAI-compatible endpoints serving the same model (e.g. vLLM or "
        "llama-server on other hosts): with api_base they are one Router model group, balanced like local replicas",
    )
    api_key_env: str | None = Field(default=None, description="Name of the env var that holds the API key")
    temperature: float = 0.0
    max_tokens: int = 1024

    @property
    def label(self) -> str:
        return self.model if self.api_base is None else f"{self.model}@{self.api_base}"


def _default_chain(max_tokens: int = 1024) -> list[LMSpec]:
    return [LMSpec(max_tokens=max_tokens),
            LMSpec(model="openai/gpt-4o-mini", api_key_env="OPENAI_API_KEY", max_tokens=max_tokens)]


def _router_chain() -> RoleSettings:
    # The LM router's reasoning is one or two sentences (about 90 tokens); the 1.5B model sometimes runs on
    # for 700+ tokens (about 100 s at -t 1). Cut there, the output does not parse and the nearest-neighbour
    # vote decides instead (ExpertService.route).
    return RoleSettings(chain=_default_chain(max_tokens=256))


class LMRouterSettings(BaseModel):
    """LiteLLM Router options shared by every role (experts/lm.py): how calls spread over deployments."""

    routing_strategy: Literal["simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing"] = Field(
        default="simple-shuffle", description="How a model group's deployments (local replicas) share calls")
    num_retries: int = Field(default=1, ge=0, description="Retries of a failed call within its model group")
    allowed_fails: int = Field(default=1, ge=0, description="Failures of a deployment before it cools down")
    cooldown_time: float = Field(default=30.0, ge=0, description="Seconds a failing deployment gets no calls")
    timeout: float | None = Field(default=600.0, description="Seconds one LM call may take")


class RoleSettings(BaseModel):
    """Ordered fallback chain for one role: the first backend that answers serves the call."""

    chain: list[LMSpec] = Field(default_factory=_default_chain)


class LocalServerSettings(BaseModel):
    """The llama-server child process (llama.cpp's, or bitnet.cpp's build for BitNet models)."""

    enabled: bool = True
    binary: Path | None = Field(default=None, description="llama-server path; default: the embedded build")
    model_path: Path | None = Field(default=None, description="GGUF file; default: the embedded model")
    # Generation leaves one core for this process and its SymPy workers; prompt reading uses them all.
    # bench/server_settings.py on 2 cores (bench/results/server_settings.json, 2026-12-02, idle blocks on an idle
    # machine): -t 2 decoded 9.1 tok/s idle but 3.3 beside a busy neighbour (--poll 0: 9.4 / 3.1); -t 1 -tb 2
    # decoded 5.4 idle and 5.1 busy, and read prompts as fast as -t 2 idle (31.7 vs 32.6 tok/s). Neither setting
    # is best in both cases: -t 2 answers 1.7x faster on an idle machine and 1.6x slower beside a busy one. The
    # default keeps the one that never collapses; SME_LOCAL__THREADS=2 takes the idle speed. These are the threads of
    # a single server (SME_LOCAL__THREADS set, or adaptive_threads off); by default both layouts run, see below.
    threads: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1))
    threads_batch: int | None = Field(
        default_factory=lambda: os.cpu_count() or 2,
        description="Threads for reading prompts (-tb); None: llama-server's default (same as threads)",
    )
    # Neither thread setting above is best both idle and busy, so by default both run (server/adaptive_local.py):
    # each call goes to `-t <cores>` while other processes leave the cores free, and to the default threads above
    # once they keep `adaptive_busy_cores` busy. Used when neither threads setting is given, with one replica, on
    # 2-4 cores (more cores gain little from the last one and pay for a second copy of the model's weights).
    # bench/server_settings.py, 2026-12-07 on a 2-core Xeon VM: decode 12.6 tok/s idle (-t 2 alone 12.5, -t 1 -tb 2
    # alone 7.3) and 6.7 beside a busy neighbour (-t 2 alone 4.1, -t 1 -tb 2 alone 7.1).
    adaptive_threads: bool = Field(
        default=True, description="Run an all-cores and a spare-core llama-server and send each call to the one "
        "the other processes' CPU use calls for (only when SME_LOCAL__THREADS/THREADS_BATCH are not set, one "
        "replica, 2-4 cores, Linux)",
    )
    adaptive_busy_cores: float = Field(
        default=0.5, gt=0, description="Cores other processes must keep busy (average over the last 3 s) before "
        "calls move to the spare-core server; they move back below half of it",
    )
    ctx_size: int = 8192
    parallel: int = 1
    replicas: int = Field(
        default=1, ge=1, le=16, description="llama-servers to start; the threads are split between them and the "
        "LiteLLM Router spreads calls over every ready one",
    )
    chat_template: str | None = None
    repack: bool | None = Field(
        default=None, description="Weight repacking into the CPU's special kernels (AMX, repacked Q4 layouts): "
        "None uses the layout `sme-mcp setup` timed faster on this machine (server/repack_choice.py; repacked "
        "until measured) and turns repacking off (--no-repack) if llama-server crashes while loading; true always "
        "repacks; false always passes --no-repack",
    )
    extra_args: list[str] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    startup_timeout: float = 300.0
    max_restarts: int = 5


class HttpSettings(BaseModel):
    """Streamable HTTP and SSE transports."""

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = Field(default=None, description="Bearer token required on every request")
    allowed_hosts: list[str] = Field(default_factory=list, description="Extra Host header values to accept")
    # Connection hygiene: a client that opens connections and never finishes a request must not hold them
    # (or the process's file descriptors) for ever.
    request_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a connection may take to send a complete request (headers and "
        "body), from its opening or the end of the previous response; slower ones are closed",
    )
    keep_alive_timeout: int = Field(default=5, ge=1, description="Seconds an idle keep-alive connection stays open")
    max_connections: int = Field(
        default=256, ge=1, description="Open connections at most (SSE streams count; one client's pool may hold "
        "100); further ones are closed at once. Also capped at half the process's file-descriptor limit",
    )
    max_header_bytes: int = Field(default=16384, ge=1024, description="Largest request head (request line and "
                                  "headers) accepted")


class UsageSettings(BaseModel):
    """The local usage log (experts/usage_log.py): questions, answers and ratings, never sent anywhere."""

    enabled: bool = Field(default=True, description="false: nothing about questions or answers is written")
    max_entries: int = Field(default=10_000, ge=1, description="Entries kept at most; the oldest go first")


class MLflowSettings(BaseModel):
    enabled: bool = False
    tracking_uri: str | None = Field(default=None, description="Default: sqlite file in the data dir")
    experiment: str = "sme-mcp"


class ClientFilesSettings(BaseModel):
    """Which files on this machine MCP clients may make the server read (not the experts' settings).

    A client names paths in `ingest_documents` and in `run_eval`'s `goldset_path`; the server resolves
    each (symlinks and `..` included) and reads it only when the result lies inside these folders. The
    folders themselves are resolved once (ingest folders when the server is built, gold-set folders at
    their first use). The command line (`sme-mcp ingest`, `sme-mcp eval --goldset`) is run by the user
    and reads any path the user names.
    """

    ingest_roots: list[Path] = Field(
        default_factory=lambda: [DEMO_CORPUS_DIR],
        description="Folders ingest_documents may read (recursively); empty: clients may ingest nothing",
    )
    goldset_roots: list[Path] | None = Field(
        default=None, description="Folders run_eval's goldset_path may point into; None: the gold sets dir "
        "(SME_GOLDSETS_DIR) and the demo corpus (its questions.jsonl); empty: none",
    )
    max_walk_files: int = Field(default=10_000, ge=1, description="Directory entries (files and folders, hidden "
                                "ones included) one ingest_documents call looks at, at most")
    max_walk_depth: int = Field(default=32, ge=1, description="Folder levels below a named folder that are read")
    max_walk_seconds: float = Field(default=60.0, gt=0, description="Seconds one ingest_documents call may spend "
                                    "listing folders")
    max_goldset_bytes: int = Field(default=50_000_000, ge=1, description="Largest gold-set file run_eval reads")
    max_goldset_line_bytes: int = Field(default=1_000_000, ge=1024, description="Longest gold-set line (one item)")

    def walk_limits(self) -> WalkLimits:
        from sme_mcp.tools.file_access import WalkLimits

        return WalkLimits(self.max_walk_files, self.max_walk_depth, self.max_walk_seconds)


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback) / "sme-mcp"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SME_", env_file=".env", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(default_factory=lambda: _xdg("XDG_DATA_HOME", ".local/share"))
    cache_dir: Path = Field(default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache"))
    router: RoleSettings = Field(default_factory=_router_chain)
    math: RoleSettings = Field(default_factory=RoleSettings)
    code: RoleSettings = Field(default_factory=RoleSettings)
    general: RoleSettings = Field(default_factory=RoleSettings)
    local: LocalServerSettings = Field(default_factory=LocalServerSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    mlflow: MLflowSettings = Field(default_factory=MLflowSettings)
    usage: UsageSettings = Field(default_factory=UsageSettings)
    lm_router: LMRouterSettings = Field(default_factory=LMRouterSettings)
    client_files: ClientFilesSettings = Field(default_factory=ClientFilesSettings)
    sympy_workers: int = 2
    sympy_timeout: float = 10.0
    sympy_memory_mb: int = 1024
    max_question_chars: int = 8000
    react_max_iters: int = 5
    # bench/math_word_problems.py, the 73 GSM8K word problems of math dev, LM cache off (2026-12-07): a program 42/73
    # (p50 12.4 s, p95 21.6 s) against chain of thought with math v1's demos 35/73 (p50 24.7 s, p95 44.5 s); paired 13
    # to 6, McNemar p 0.17. The rule fixed before the run (more right, or as many and faster) chose program.
    math_word_problems: Literal["reasoning", "program"] = Field(
        default="program", description="How the math expert answers a word problem: reasoning = chain of thought; "
        "program = the model writes a short Python program that the sandbox runs (one fix if it fails, then chain "
        "of thought)",
    )
    # A word problem's program that prints what cannot be the answer (words for an amount, a negative count, a
    # fraction that runs on: experts/math_program.py::implausible_answer) is retried this way.
    # bench/math_implausible.py, the 73 math dev word problems, LM cache off (2026-12-08, ebf8897): 4 answers were
    # implausible (all wrong); a fix told why mended none (3 printed the same), a fresh sample none (2 plausible but
    # wrong); every policy 42/73. The rule fixed before the run (at least 2 more right) kept none: such an answer
    # comes back marked as a failed check.
    math_implausible_retry: Literal["none", "fix", "sample", "fix_then_sample"] = Field(
        default="none", description="What follows a word problem's program whose answer cannot be right: none; fix = "
        "the program goes back once with what is wrong with its answer; sample = one fresh program at temperature "
        "0.7; fix_then_sample = both, in turn. An answer no retry mends is returned marked as a failed check",
    )
    # bench/code_samples.py, first 50 code dev items asked as the gold set asks (task and its first assert), LM cache
    # off (2026-12-07, e1b1cc0): the greedy write failed the shown test on 25 of 50; of 27 repairs told the failed
    # assert, 1 passed it and none passed all asserts; of 100 fresh samples at temperature 0.7, 10 and 6. All asserts
    # passed: 2 repairs + 1 sample (the earlier default) 23/50 (p50 41.5 s, p95 125 s), 1 repair + 2 samples 25/50,
    # 3 samples 26/50 (p50 45.7 s, p95 166 s; 3 items only it passes, none only the earlier default, McNemar p 0.25).
    # The rule fixed before the run (the best policy of at most 4 calls replaces the default with at least 2 more
    # passes) chose 3 samples: no repair, 3 alternatives.
    code_repair_attempts: int = Field(
        default=0, ge=0, le=5, description="Times the code expert may repair code that failed its tests in the "
        "sandbox (each repair is one LM call; the expert makes at most 4 calls per question)",
    )
    code_alternatives: int = Field(
        default=3, ge=0, le=3, description="Fresh versions the code expert samples at temperature 0.7 when its "
        "repairs stall and the code still fails its tests, one at a time until one passes (each is one LM call, "
        "within the expert's 4 calls per question)",
    )
    # bench/code_no_tests.py, first 50 code dev items asked without tests (2026-12-07): all gold tests passed by
    # 18/50 with the write and its checks (2 calls, p50 27.8 s), 19/50 with one repair (2.58 calls, p50 45.5 s) or
    # the full budget (3.14 calls, p50 60.5 s, 25 of 50 over 60 s). The rule fixed before the run, the cheapest
    # policy within one item of the full one, chose 2: repairs mostly chased the expert's own wrong checks.
    code_calls_without_tests: int = Field(
        default=2, ge=2, le=4, description="LM calls the code expert may make when the question gives no tests and "
        "the checks are its own: 2 = write and check (the checks' outcome is reported), 3 = also one repair, 4 = "
        "repairs and a sampled alternative like a question with tests",
    )
    # On the first 10 code dev items, with verification: reasoning on 5/10 (bench/results/code_verify.json), off 3/10
    # (receipts/eval-code-dev-20261202T032355Z.json), and off was not much faster per item (more items needed
    # repairs): reasoning stays on.
    code_reasoning: bool = Field(
        default=True, description="Whether the code expert reasons step by step before writing or repairing code "
        "(ChainOfThought); false: it writes the code at once (Predict), with far fewer tokens to wait for",
    )
    # bench/code_no_tests.py, the same 50 dev items, write and checks: without reasoning 20/50 (p50 21.6 s, p95 41.9 s)
    # against 18/50 with it (p50 27.8 s, p95 109.6 s); paired 4 to 2, McNemar p 0.69. The rule fixed before the run,
    # "without reasoning if it passes at least as many less one", chose false.
    code_reasoning_without_tests: bool | None = Field(
        default=False, description="The code expert's reasoning for the write of a question that gives no tests (its "
        "own checks are then all it has): true = ChainOfThought, false = Predict, unset = as code_reasoning",
    )
    # On the first 60 tune-half SQuAD questions of the demo corpus (bench/grounding.half), LM cache off, 2066699+:
    # reasoning on 30/60 EM (receipts/eval-general-custom-20261207T040357Z.json, p50 13.4 s, 73 tokens generated),
    # off 22/60 (eval-general-custom-20261207T041225Z.json, p50 8.1 s, 18.5 tokens; 4 fixed, 12 broken: longer
    # answers, a wrong name). The rule fixed before the runs was "off only if at most one item worse": it stays on.
    general_reasoning: bool = Field(
        default=True, description="Whether the general expert reasons before its answer (ChainOfThought); false: it "
        "answers at once (Predict), with far fewer tokens to wait for",
    )
    # bench/general_brief_reasoning.py on the first 60 tune-half SQuAD questions, LM cache off, idle, plain weights,
    # at eb5ea2b: step by step 28/60 EM, p50 9.94 s, 72.5 tokens generated (eval-general-custom-20261207T190539Z.json);
    # brief 24/60, p50 8.29 s, 50.5 tokens (eval-general-custom-20261207T191537Z.json); paired 6 broken, 2 fixed. The
    # rule fixed before the run (at least as many right less one, lower p50) keeps step-by-step reasoning.
    general_brief_reasoning: bool = Field(
        default=False, description="With general_reasoning on, the general expert's reasoning is one sentence quoting "
        "the passage words that answer, not step-by-step reasoning: fewer tokens to wait for",
    )
    # bench/general_draft_first.py on the first 60 tune-half SQuAD questions, LM cache off, idle, at f5bdd8a: drafts
    # were returned for 2 of 60 (1 right): the questions are about the documents, which the model does not know by
    # heart. EM 30/60 both ways (paired 0/0), p50 14.2 s against 12.6 s with the passages always read. The rule fixed
    # before the run (at least as many right less one, with a lower p50) keeps it off. On the 34 user questions
    # (bench/results/user_questions_draft_first.json, after ee84138, idle) 4 of 12 general answers came from a supported
    # draft in under 2 s, the other 8 took 2.5-3.5 s longer; 30/34 right either way, p50 10.35 s against 9.88 s.
    general_draft_first: bool = Field(
        default=False, description="The general expert first answers from the model's own knowledge (a few tokens) "
        "and returns that answer when a retrieved passage supports it (grounded), without the model reading the "
        "passages; otherwise it answers from the passages as usual, one short call later",
    )
    # bench/grounding_judge.py on the first 60 tune-half SQuAD questions, LM cache off, idle, at 366ef17: of the 33
    # answers the lexical check called grounded (22 right), the model withdrew the label from 7 of the 11 wrong ones and
    # 15 of the 22 right ones (grounded precision 0.667 -> 0.636), 2.8 s per judgment (p50). The rule fixed before the
    # run (at least a third of the wrong, at most a tenth of the right) keeps it off.
    general_judge_grounding: bool = Field(
        default=False, description="Before a general answer is called grounded, the model is shown the sentence the "
        "lexical check found and asked whether it answers the question (one short LM call for those answers); "
        "unconfirmed answers are marked partial",
    )
    lm_stream: bool = Field(
        default=True, description="Stream the LM calls an answer waits for: the model's tokens go out as progress, "
        "and a cancelled question stops the generation at once; false: one response per call (a cancel then stops "
        "the work at the next call)",
    )
    lm_cache: bool = Field(
        default=True, description="Reuse identical LM calls from DSPy's cache under the data dir; false: every call "
        "reaches the model (what benchmarks of latency need)",
    )
    # On the first 60 tune-half SQuAD questions, LM cache off, idle: 2 passages gave 26/60 EM, p50 9.4 s
    # (receipts/eval-general-custom-20261207T170948Z.json, at ea2d4d9) against 30/60, p50 12.6 s with 3
    # (eval-general-custom-20261207T140511Z.json); paired 5 broken, 1 fixed. 3 stays.
    retrieval_k: int = Field(default=3, ge=0, description="Passages the general expert is shown; 0: closed-book")
    retrieval_min_similarity: float = Field(
        # From bench/results/retrieval_gate.json: at 0.35 the top passage of 94.5% of SQuAD questions is kept
        # while 70.5% of NQ-open questions (which the demo corpus mostly lacks) get no distracting context.
        default=0.35, ge=-1.0, le=1.0,
        description="Passages whose cosine similarity to the question is lower are not shown to the general expert",
    )
    # From bench/results/retrieval_rerank.json: over 10 hits, the fused order puts the supporting passage of more
    # SQuAD questions among the 3 shown than the search's own order, on the half that did not choose it.
    retrieval_pool: int = Field(
        default=10, ge=0, le=50, description="Hits searched before the best retrieval_k are shown, reordered by "
        "how much of the question their best sentence covers (fused with the search's order); retrieval_k or "
        "less: the search's own order",
    )
    general_retry_echo: bool = Field(
        default=True, description="Ask the general expert once more when its answer only repeats words of the "
        "question (one more LM call for those answers)",
    )
    # bench/results/context_window.json: how many SQuAD answers each cut leaves in the passages, and how much it
    # shortens them. Off until an LM run shows the cut keeps the general expert's exact match. The LM run of the cut
    # that bench chose (2 sentences, window 1) on the first 60 tune-half SQuAD questions, LM cache off: 24/60 EM
    # (receipts/eval-general-custom-20261207T083554Z.json, p50 12.0 s) against 30/60 with whole passages
    # (eval-general-custom-20261207T040357Z.json, p50 13.4 s); paired 1 fixed, 7 broken. It stays off.
    retrieval_keep_sentences: int = Field(
        default=0, ge=0, le=20, description="Sentences shown per passage: the ones covering most of the question, "
        "each with retrieval_sentence_window neighbours either side (the model reads less, so answers sooner); "
        "0: whole passages",
    )
    retrieval_sentence_window: int = Field(
        default=1, ge=0, le=5, description="Sentences shown before and after each of the retrieval_keep_sentences",
    )
    goldsets_dir: Path = GOLDSETS_DIR
    receipts_dir: Path = Field(
        # In a checkout the repository's receipts/ is the project's record; an installed wheel must never write
        # into site-packages, so its runs go under the data dir.
        default_factory=lambda data: SHIPPED_RECEIPTS_DIR if IN_CHECKOUT else Path(data["data_dir"]) / "receipts",
        description="Where evaluation and optimization receipts are written (default: the checkout's receipts/, "
        "or <data dir>/receipts when installed from a wheel)",
    )
    shipped_programs_dir: Path | None = Field(
        default=COMPILED_DIR,
        description="Optimized programs shipped with the project; a data dir without its own versions of a "
        "program starts from these (empty: start from the base programs)",
    )
    eval_thresholds: dict[str, float] = Field(
        # The router's is just below the lower 95% bound of its first measured baseline (receipts/eval-*);
        # each expert's own threshold is in its declaration (experts/builtin_experts.py, or its TOML file).
        default_factory=lambda: {"router": 0.55},
        description="Minimum holdout score per gold set, overriding the experts' declared thresholds; "
        "`sme-mcp eval` exits non-zero below it",
    )
    expert_files: list[Path] = Field(
        default_factory=list,
        description="TOML files that declare more experts (experts/declared.py gives the format); read at start-up, "
        "and a broken one stops the server with its reason. Only the user's settings name them: no MCP client can "
        "add an expert",
    )

    @field_validator("shipped_programs_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    def role(self, role: Role) -> RoleSettings:
        """The LM chain settings of the router or a built-in expert (declared experts carry their own)."""
        if role not in ROLES:
            raise KeyError(f"{role!r} is not the router or a built-in expert")
        return getattr(self, role)

    def receipt_dirs(self) -> list[Path]:
        """Where receipts are read from: `receipts_dir`, then the project's shipped receipts when they apply.

        An installed wheel writes its own runs under the data dir but must still know the project's runs:
        their optimize receipts name the holdout items that chose the shipped programs. They are about the
        shipped gold sets only, so another `goldsets_dir` reads `receipts_dir` alone.
        """
        dirs = [Path(self.receipts_dir)]
        shipped = SHIPPED_RECEIPTS_DIR.resolve()
        if (SHIPPED_RECEIPTS_DIR.is_dir() and shipped != dirs[0].resolve()
                and Path(self.goldsets_dir).resolve() == GOLDSETS_DIR.resolve()):
            dirs.append(SHIPPED_RECEIPTS_DIR)
        return dirs
