"""`sme-mcp config CLIENT [--write FILE]`, run as the installed command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SME_MCP = Path(sys.executable).with_name("sme-mcp")


def config(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SME_MCP), "config", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("client", "key", "typed"), [
    ("claude-desktop", "mcpServers", False), ("cursor", "mcpServers", False), ("vscode", "servers", True),
    ("generic", "mcpServers", True),
])
def test_prints_the_clients_snippet_with_this_environments_absolute_command(client, key, typed):
    out = config(client)
    assert out.returncode == 0, out.stderr
    entry = json.loads(out.stdout)[key]["sme-mcp"]
    assert Path(entry["command"]).is_absolute() and Path(entry["command"]) == SME_MCP.absolute()
    assert entry["args"] == ["serve"]
    assert ("type" in entry) is typed and entry.get("type", "stdio") == "stdio"


def test_write_merges_keeping_every_other_server_and_key_with_a_backup(tmp_path):
    path = tmp_path / "claude_desktop_config.json"
    original = {"mcpServers": {"filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-fs"]},
                               "sme-mcp": {"command": "/old/path/sme-mcp", "args": ["serve"]}},
                "globalShortcut": "Ctrl+Space", "nested": {"a": [1, 2, {"b": None}]}}
    text = json.dumps(original, indent=4)
    path.write_text(text)
    path.chmod(0o644)
    out = config("claude-desktop", "--write", str(path), "--env", "SME_DATA_DIR=/data/sme")
    assert out.returncode == 0, out.stderr
    assert "replaced server 'sme-mcp'" in out.stderr
    merged = json.loads(path.read_text())
    assert merged["globalShortcut"] == "Ctrl+Space" and merged["nested"] == original["nested"]
    assert merged["mcpServers"]["filesystem"] == original["mcpServers"]["filesystem"]
    assert merged["mcpServers"]["sme-mcp"] == {"command": str(SME_MCP.absolute()), "args": ["serve"],
                                               "env": {"SME_DATA_DIR": "/data/sme"}}
    backups = list(tmp_path.glob("claude_desktop_config.json.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == text  # the old bytes, exactly
    assert path.stat().st_mode & 0o777 == 0o644

    out = config("claude-desktop", "--write", str(path), "--name", "sme-2", "--no-local")  # a second entry
    assert out.returncode == 0 and "added server 'sme-2'" in out.stderr, out.stderr
    servers = json.loads(path.read_text())["mcpServers"]
    assert set(servers) == {"filesystem", "sme-mcp", "sme-2"} and servers["sme-2"]["args"] == ["serve", "--no-local"]
    assert len(list(tmp_path.glob("claude_desktop_config.json.bak-*"))) == 2


def test_write_creates_a_missing_file_under_the_clients_key(tmp_path):
    path = tmp_path / ".vscode" / "mcp.json"
    out = config("vscode", "--write", str(path))
    assert out.returncode == 0, out.stderr
    assert json.loads(path.read_text()) == {"servers": {"sme-mcp": {
        "type": "stdio", "command": str(SME_MCP.absolute()), "args": ["serve"]}}}
    assert not list(path.parent.glob("*.bak-*"))  # nothing existed to back up


@pytest.mark.parametrize(("content", "fragment"), [
    ('{"mcpServers": {"fs": {"command": "npx"}},\n  // my comment\n}', "is not valid JSON (line 2"),
    ('["not", "an", "object"]', "holds a JSON list, not an object"),
    ('{"mcpServers": ["fs"]}', '"mcpServers" in'),
])
def test_write_refuses_a_file_it_cannot_merge_and_leaves_it_as_it_was(tmp_path, content, fragment):
    path = tmp_path / "mcp.json"
    path.write_text(content)
    out = config("cursor", "--write", str(path))
    assert out.returncode == 2
    assert fragment in out.stderr and "nothing was changed" in out.stderr, out.stderr
    assert path.read_text() == content  # no data lost
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mcp.json"]  # no backup, no temp file left
