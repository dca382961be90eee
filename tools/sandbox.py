"""Runs untrusted, model-generated Python in a locked-down child process.

What it protects against (each layer is independent, so one failing does not open everything):

* Runaway programs: a wall-clock timeout SIGKILLs the child's whole process group (it runs in its
  own session); RLIMIT_CPU, RLIMIT_AS (memory), RLIMIT_FSIZE (file size, including captured
  output), RLIMIT_NOFILE and RLIMIT_CORE are set in the child before any user code runs.
* Network: where ``unshare`` works (root, or unprivileged user namespaces), the child runs in a
  new network namespace with only a downed loopback device. In every case an audit hook refuses
  creating non-Unix sockets, connect, bind, sendto and name lookups.
* Processes: the audit hook refuses ``os.system``, ``subprocess``, ``os.exec*``, ``os.fork``,
  ``os.posix_spawn``, ``os.kill`` of other processes, and importing ``ctypes``/``_ctypes``/
  ``_posixsubprocess`` (ctypes can call libc directly and bypass audit hooks altogether).
  RLIMIT_NPROC is set to 0, which stops forks and threads for non-root users.
* Files: the child's cwd, HOME and TMPDIR are a fresh temporary directory that is deleted
  afterwards. The audit hook refuses opening, creating, renaming, linking or deleting anything
  outside it for writing, and reading anything outside it, the interpreter's own library
  directories and a few harmless devices (so ``/proc/<server pid>/environ``, ``~/.ssh`` or the
  project's ``.env`` cannot be read).
* Secrets: the child gets a minimal environment (no API keys or tokens) and runs ``python -I -B``
  (ignores ``PYTHON*`` variables, the user site directory and the current directory on
  ``sys.path``; writes no bytecode). It uses the base interpreter, not the project's venv.
* If the server dies mid-run, ``setpriv --pdeathsig KILL`` (util-linux) kills the child too.

What it does NOT protect against:

* Audit hooks are a tripwire, not a security boundary: code that corrupts interpreter memory
  (crafted bytecode via ``marshal``/``CodeType``, a C-extension or interpreter bug) can disable
  them. Those are left open because the import system and ``asyncio`` need them.
* There is no seccomp filter, chroot or user switch: if the hook is bypassed, the child has the
  server's file-system rights (root in this deployment), except for the network when namespaces
  are available, and it could fork and ``setsid`` to outlive the run (there is no PID namespace,
  see `_ISOLATION_CANDIDATES`). Running the server as an unprivileged user is the stronger
  boundary; switching the child to ``nobody`` is not possible here because the interpreter lives
  under ``/root``.
* Without ``unshare`` the network is blocked by the audit hook alone.
* CPU and memory used by the interpreter itself count against the limits; very small
  ``memory_mb`` values make even ``import`` fail.

The server side never evaluates the code: it is written to a file and run by the child.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_CODE_CHARS = 200_000
MAX_OUTPUT_CHARS = 6_000  # per stream by default; the head and the tail are kept, since errors come last
MAX_STDIN_CHARS = 1_000_000
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_OPEN_FILES = 64
MIN_MEMORY_MB = 64

# Runs in the child before the user's program. It is a constant, so nothing from the request is
# ever interpreted by the server; the child gets its settings through argv.
_PRELUDE = r'''
import os, sys, resource

def _sandbox_setup():
    main_path = sys.argv[1]
    mem_mb, cpu_s, fsize, max_files = (int(a) for a in sys.argv[2:6])
    for limit, value in (
        (resource.RLIMIT_AS, mem_mb * 1024 * 1024),
        (resource.RLIMIT_FSIZE, fsize),
        (resource.RLIMIT_NOFILE, max_files),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, 0),
    ):
        resource.setrlimit(limit, (value, value))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))

    real = os.path.realpath
    root = real(os.getcwd())
    read_roots = {root, "/usr/share/zoneinfo"}
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path):
        if p and os.path.isabs(p):
            read_roots.add(real(p))
    read_roots = tuple(sorted(read_roots))
    devices = frozenset(("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/etc/localtime"))
    write_devices = frozenset(("/dev/null", "/dev/stdout", "/dev/stderr"))
    blocked_modules = frozenset(("ctypes", "_ctypes", "_posixsubprocess", "_xxsubinterpreters", "_testcapi",
                                 "_testinternalcapi", "_cffi_backend", "cffi"))
    blocked_events = frozenset((
        "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.startfile",
        "subprocess.Popen", "pty.spawn", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
        "os.setuid", "os.setgid", "os.chroot", "sys.remote_exec",
    ))
    path_events = frozenset((
        "os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.chmod", "os.chown",
        "os.truncate", "os.utime", "os.setxattr", "os.removexattr", "os.chflags", "os.lchflags", "os.mkfifo",
        "os.mknod", "shutil.rmtree", "shutil.move", "shutil.copyfile", "shutil.copytree",
    ))
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    pid = os.getpid()
    socket_family_unix = 1  # AF_UNIX on every POSIX system; importing socket here would be wasted work

    def inside(path, roots):
        path = real(path)
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

    def as_path(value):
        if isinstance(value, int):
            return None  # an already open file descriptor, checked when it was opened
        return os.fsdecode(os.fspath(value))

    def refuse(what):
        raise PermissionError("sandbox: " + what + " is not allowed")

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            path = as_path(path)
            if path is None:
                return
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & write_flags)
            if writing:
                if path not in write_devices and not inside(path, (root,)):
                    refuse("writing " + path)
            elif path not in devices and not inside(path, read_roots):
                refuse("reading " + path)
            elif os.path.isdir(path) and not inside(path, (root,)):
                # A directory fd outside would let dir_fd= paths escape the checks above.
                refuse("opening the directory " + path)
        elif event.startswith("socket."):
            # An unconnected AF_UNIX socket is harmless (connect/bind/sendto stay refused) and
            # asyncio's event loop needs a socketpair to wake itself up.
            if not (event == "socket.__new__" and args[1] == socket_family_unix):
                refuse("network access (" + event + ")")
        elif event in blocked_events:
            refuse(event)
        elif event == "import":
            if args[0].partition(".")[0] in blocked_modules:
                refuse("importing " + args[0])
        elif event in path_events:
            for arg in args:
                if isinstance(arg, (str, bytes, os.PathLike)) and not inside(as_path(arg), (root,)):
                    refuse(event + " outside the sandbox directory")
        elif event in ("os.listdir", "os.scandir"):
            path = as_path(args[0]) if args and args[0] is not None else "."
            if path is not None and not inside(path, read_roots):
                refuse("listing " + path)
        elif event == "os.chdir":
            # Relative paths are checked against the cwd; with dir_fd= they resolve against a
            # directory that is always at or below it, so they cannot climb out unnoticed.
            target = as_path(args[0])
            if target is None or real(target) != root:
                refuse("changing directory")
        elif event in ("os.kill", "os.killpg"):
            if args[0] != pid:
                refuse(event)

    # subprocess (needed by asyncio and others) stays importable, but its unaudited fork_exec is
    # cut off: Popen itself is refused by the hook, and re-importing _posixsubprocess is too.
    import subprocess
    subprocess._fork_exec = None
    subprocess._can_fork_exec = False
    sys.modules.pop("_posixsubprocess", None)

    with open(main_path, encoding="utf-8") as f:
        source = f.read()
    sys.argv = ["main.py"]
    sys.addaudithook(hook)
    return compile(source, main_path, "exec")

_sandbox_code = _sandbox_setup()
del _sandbox_setup
exec(_sandbox_code, {"__name__": "__main__", "__builtins__": __builtins__})  # safe: runs in the sandbox child
'''

_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}

# Tried in order; the first prefix that can start the interpreter is used for every run.
# `setpriv --pdeathsig` fires when the *thread* that started the child exits; that is safe here
# because run_python blocks its calling thread until the child is gone.
# No PID namespace: its first process would be the interpreter itself, and a namespace's init
# ignores SIGXCPU and signals it sends itself, while `unshare --fork` reports a SIGKILLed child
# as exit status 1. Escaping the process group needs a fork, which the audit hook refuses.
_ISOLATION_CANDIDATES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("setpriv+unshare(net)", ("setpriv", "--pdeathsig", "KILL", "--", "unshare", "--net", "--")),
    ("setpriv+unshare(user,net)", (
        "setpriv", "--pdeathsig", "KILL", "--", "unshare", "--user", "--map-root-user", "--net", "--",
    )),
    ("unshare(net)", ("unshare", "--net", "--")),
    ("setpriv", ("setpriv", "--pdeathsig", "KILL", "--")),
    ("none", ()),
)


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one sandboxed run.

    Attributes:
        ok: The program exited with status 0 within its limits.
        returncode: The exit status, negative for a signal, None if it never started.
        stdout: Captured standard output, shortened to about ``MAX_OUTPUT_CHARS``.
        stderr: Captured standard error (tracebacks), shortened the same way.
        timed_out: The wall-clock timeout expired and the process group was killed.
        killed_reason: Why the program was stopped from outside, or None if it ended by itself.
        duration_s: Wall-clock seconds the run took.
        pid: Host process id of the run's process-group leader (also its session id).
        isolation: Which namespace/``setpriv`` wrapper was used (see `isolation`).
    """

    ok: bool
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    killed_reason: str | None
    duration_s: float
    pid: int | None
    isolation: str


def _interpreter() -> str:
    # The base interpreter keeps the project's venv (and its secrets-adjacent config) out of reach.
    base = getattr(sys, "_base_executable", None)
    return base if base and os.path.exists(base) else sys.executable


@functools.lru_cache(maxsize=1)
def isolation() -> tuple[str, tuple[str, ...]]:
    """Finds the strongest process wrapper that works on this machine (probed once, then cached).

    Returns:
        A (name, argv prefix) pair; the name is ``"none"`` when only the in-process layers apply.
    """
    for name, prefix in _ISOLATION_CANDIDATES:
        if not prefix:
            return name, prefix
        if shutil.which(prefix[0]) is None:
            continue
        try:
            probe = subprocess.run(
                [*prefix, _interpreter(), "-I", "-c", "pass"], env=_ENV, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10, check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            log.info("sandbox isolation: %s", name)
            return name, prefix
    return "none", ()


def _read_capped(f: tempfile._TemporaryFileWrapper, limit: int) -> str:  # type: ignore[type-arg]
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    half = limit // 2
    if size <= limit:
        return f.read().decode("utf-8", errors="replace")
    head = f.read(half).decode("utf-8", errors="replace")
    f.seek(size - half)
    tail = f.read(half).decode("utf-8", errors="replace")
    return f"{head}\n[... {size - 2 * half} bytes cut ...]\n{tail}"


def _wait_exit(pid: int, timeout: float) -> bool:
    """Waits until the process has exited, WITHOUT reaping it, so its pid (and process-group id)
    cannot be reused by an unrelated process while we still signal them."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILLs whatever is left of the run's process group, then reaps its leader."""
    # The leader is not reaped yet (waited on with WNOWAIT), so its pid, which is also the group
    # id, cannot have been reused by an unrelated process group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _killed_reason(returncode: int, timed_out: bool, timeout_s: float) -> str | None:
    if timed_out:
        return f"wall-clock timeout of {timeout_s:g} s"
    if returncode == -signal.SIGXCPU:
        return "CPU time limit"
    if returncode == -signal.SIGXFSZ:
        return "file size limit"
    if returncode < 0:
        return f"killed by signal {signal.Signals(-returncode).name}"
    return None


def run_python(
    code: str, *, timeout_s: float = 10, memory_mb: int = 512, stdin: str | None = None,
    max_output_chars: int = MAX_OUTPUT_CHARS,
) -> SandboxResult:
    """Runs a Python program in a sandboxed child process and returns what happened.

    Args:
        code: The complete program text; it runs as ``__main__`` in an empty temporary directory.
        timeout_s: Wall-clock seconds before the whole process group is SIGKILLed.
        memory_mb: Address-space limit of the child (RLIMIT_AS).
        stdin: Text the program can read from standard input (UTF-8); by default it reads nothing.
        max_output_chars: How much of each output stream is kept (head and tail).

    Returns:
        A `SandboxResult`; refusals by the sandbox show up as ``PermissionError`` in ``stderr``.

    Raises:
        TypeError: ``code`` is not a string.
        ValueError: ``code`` is too long or a limit is out of range.
    """
    if not isinstance(code, str):
        raise TypeError(f"code must be a string, got {type(code).__name__}")
    if len(code) > MAX_CODE_CHARS:
        raise ValueError(f"code is {len(code)} characters long; the limit is {MAX_CODE_CHARS}")
    if not 0 < timeout_s <= 600:
        raise ValueError("timeout_s must be in (0, 600]")
    if memory_mb < MIN_MEMORY_MB:
        raise ValueError(f"memory_mb must be at least {MIN_MEMORY_MB}")
    if stdin is not None and (not isinstance(stdin, str) or len(stdin) > MAX_STDIN_CHARS):
        raise ValueError(f"stdin must be a string of at most {MAX_STDIN_CHARS} characters")
    if not 2 <= max_output_chars <= MAX_FILE_BYTES:
        raise ValueError(f"max_output_chars must be in [2, {MAX_FILE_BYTES}]")

    name, prefix = isolation()
    cpu_s = math.ceil(timeout_s) + 1
    workdir = tempfile.mkdtemp(prefix="sme-sandbox-")
    start = time.monotonic()
    try:
        main_path = os.path.join(workdir, "main.py")
        with open(main_path, "w", encoding="utf-8") as f:
            f.write(code)
        argv = [*prefix, _interpreter(), "-I", "-B", "-c", _PRELUDE,
                main_path, str(memory_mb), str(cpu_s), str(MAX_FILE_BYTES), str(MAX_OPEN_FILES)]
        env = {**_ENV, "HOME": workdir, "TMPDIR": workdir}
        # Input and output go through anonymous files, not pipes: RLIMIT_FSIZE caps the output, so
        # a print loop cannot fill the server's memory, and nothing can deadlock on a full pipe.
        with tempfile.TemporaryFile() as inp, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            if stdin is not None:
                inp.write(stdin.encode("utf-8", errors="replace"))
                inp.seek(0)
            try:
                proc = subprocess.Popen(
                    argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL if stdin is None else inp,
                    stdout=out, stderr=err,
                    start_new_session=True, close_fds=True,
                )
            except OSError as exc:
                return SandboxResult(False, None, "", f"could not start the sandbox: {exc}", False,
                                     "start failed", time.monotonic() - start, None, name)
            try:
                timed_out = not _wait_exit(proc.pid, timeout_s)
            finally:
                # Always, not only on timeout: anything the program left running in its group dies too.
                _stop(proc)
            returncode = proc.returncode
            stdout, stderr = _read_capped(out, max_output_chars), _read_capped(err, max_output_chars)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return SandboxResult(
        ok=returncode == 0 and not timed_out,
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
        killed_reason=_killed_reason(returncode, timed_out, timeout_s),
        duration_s=time.monotonic() - start,
        pid=proc.pid,
        isolation=name,
    )
