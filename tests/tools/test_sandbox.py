"""Tests for the sandbox that runs generated Python: limits, isolation and clean-up."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from sme_mcp.tools.sandbox import SandboxResult, isolation, run_python


def _session_members(sid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, pgrp, session, ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def _refused(result: SandboxResult) -> bool:
    return not result.ok and result.returncode != 0 and "Error" in result.stderr


def test_normal_program_passes_and_its_output_is_captured():
    result = run_python("import math\nprint(sum(range(10)), math.factorial(5))\n", timeout_s=10)
    assert result.ok, result.stderr
    assert result.returncode == 0
    assert result.stdout.strip() == "45 120"
    assert not result.timed_out
    assert result.killed_reason is None


def test_failing_assert_is_reported_in_stderr():
    result = run_python("def f(x):\n    return x + 1\nassert f(1) == 3, 'wrong'\n")
    assert not result.ok
    assert result.returncode == 1
    assert "AssertionError: wrong" in result.stderr


def test_infinite_loop_times_out_and_leaves_no_process_behind():
    start = time.monotonic()
    result = run_python("while True:\n    pass\n", timeout_s=1.5)
    assert time.monotonic() - start < 10
    assert result.timed_out
    assert not result.ok
    assert result.killed_reason and "timeout" in result.killed_reason
    assert result.pid is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(result.pid, 0)
    assert _session_members(result.pid) == []


def test_allocating_10_gb_fails_cleanly():
    result = run_python("data = bytearray(10 * 1024 ** 3)\nprint('allocated')\n", timeout_s=10, memory_mb=512)
    assert not result.ok
    assert not result.timed_out
    assert "MemoryError" in result.stderr
    assert "allocated" not in result.stdout


def test_network_connect_fails_and_reaches_nobody():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    try:
        code = (
            "import socket\n"
            f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "s.sendall(b'leak')\n"
            "print('connected')\n"
        )
        result = run_python(code, timeout_s=10)
        assert _refused(result)
        assert "connected" not in result.stdout
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()


def test_creating_an_inet_socket_is_refused():
    result = run_python("import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nprint('made')\n")
    assert _refused(result)
    assert "PermissionError" in result.stderr
    assert "made" not in result.stdout


def test_writing_outside_the_temp_dir_fails_and_leaves_no_file(tmp_path):
    target = tmp_path / "escaped.txt"
    for code in (
        f"open({str(target)!r}, 'w').write('x')\n",
        f"import os\nos.open({str(target)!r}, os.O_WRONLY | os.O_CREAT)\n",
        f"import os\nos.chdir({str(tmp_path)!r})\nopen('escaped.txt', 'a').write('x')\n",
        f"import os\nos.symlink({str(target)!r}, 'link')\nopen('link', 'w').write('x')\n",
    ):
        result = run_python(code)
        assert _refused(result), code
        assert "PermissionError" in result.stderr
        assert not target.exists()


def test_writing_inside_the_temp_dir_works_and_the_dir_is_removed():
    code = "import os\nopen('scratch.txt', 'w').write('hello')\nprint(os.getcwd())\nprint(open('scratch.txt').read())\n"
    result = run_python(code)
    assert result.ok, result.stderr
    workdir, content = result.stdout.split()
    assert content == "hello"
    assert not Path(workdir).exists()


def test_os_system_and_subprocess_are_refused(tmp_path):
    canary = tmp_path / "canary"
    for code in (
        f"import os\nos.system('touch {canary}')\n",
        f"import subprocess\nsubprocess.run(['touch', {str(canary)!r}])\n",
        f"import os\nos.execv('/usr/bin/touch', ['touch', {str(canary)!r}])\n",
        "import os\nprint(os.fork())\n",
        "import ctypes\n",
    ):
        result = run_python(code)
        assert _refused(result), code
        assert not canary.exists()


def test_secret_environment_variables_are_not_visible(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-secret")
    monkeypatch.setenv("HF_TOKEN", "hf-test-not-a-real-secret")
    result = run_python("import os\nprint(sorted(os.environ))\nprint(os.environ.get('OPENAI_API_KEY'))\n")
    assert result.ok, result.stderr
    assert "OPENAI_API_KEY" not in result.stdout
    assert "not-a-real-secret" not in result.stdout
    assert "None" in result.stdout
    # Nor through the server's /proc entry.
    leak = run_python(f"print(open('/proc/{os.getpid()}/environ').read())\n")
    assert not leak.ok
    assert "not-a-real-secret" not in leak.stdout


def test_huge_output_is_truncated():
    result = run_python("print('x' * 5_000_000)\nprint('end')\n")
    assert result.ok, result.stderr
    assert len(result.stdout) < 10_000
    assert result.stdout.rstrip().endswith("end")


def test_rejects_bad_arguments():
    with pytest.raises(TypeError):
        run_python(b"print(1)")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        run_python("print(1)", timeout_s=0)


def test_cpu_limit_kill_is_reported():
    code = "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (1, 2))\nwhile True:\n    pass\n"
    result = run_python(code, timeout_s=10)
    assert not result.ok
    assert not result.timed_out
    assert result.killed_reason == "CPU time limit"


def test_network_namespace_has_only_loopback_when_unshare_works():
    name, _ = isolation()
    if "unshare" not in name:
        message = f"no network namespace on this machine (isolation: {name}); the audit hook alone blocks the network"
        in_ci = os.environ.get("CI", "").lower() not in ("", "0", "false")
        if in_ci or os.environ.get("SME_REQUIRE_MODEL") == "1":
            pytest.fail(f"{message}. CI (CI or SME_REQUIRE_MODEL=1 is set) must test the namespace: install "
                        "util-linux's unshare and allow network namespaces (root or unprivileged user namespaces)")
        pytest.skip(message)
    result = run_python("import socket\nprint([n for _, n in socket.if_nameindex()])\n")
    assert result.ok, result.stderr
    assert result.stdout.strip() == "['lo']"
