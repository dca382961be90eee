"""`sme-mcp config CLIENT`: the JSON snippet that connects an MCP client to this installation over stdio.

Each client keeps its servers under its own key: Claude Desktop (`claude_desktop_config.json`) and
Cursor (`~/.cursor/mcp.json`) under `mcpServers`, VS Code (`.vscode/mcp.json`) under `servers` with a
`type`. The command is the absolute path of the `sme-mcp` executable of the environment this runs in,
so the client starts the same installation whatever its own PATH is.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Literal

ClientName = Literal["claude-desktop", "cursor", "vscode", "generic"]
CLIENTS: tuple[ClientName, ...] = ("claude-desktop", "cursor", "vscode", "generic")

# Where each client reads its config (shown in the help; --write needs the path named explicitly).
CONFIG_FILES = {
    "claude-desktop": "~/Library/Application Support/Claude/claude_desktop_config.json (macOS), "
                      "%APPDATA%\\Claude\\claude_desktop_config.json (Windows), ~/.config/Claude/... (Linux)",
    "cursor": "~/.cursor/mcp.json, or .cursor/mcp.json in a project",
    "vscode": ".vscode/mcp.json in a workspace",
    "generic": "any client that takes the common mcpServers form",
}


class ConfigFileError(ValueError):
    """The config file cannot be merged into; it was left as it was. The message says why and what to do."""


def server_command() -> list[str]:
    """The command that starts this installation's server: its `sme-mcp` script, or the interpreter with -m.

    The path is made absolute but not resolved: a venv's `bin/python` is a symlink to the base interpreter,
    and resolving it would leave the venv.
    """
    script = Path(sys.executable).with_name("sme-mcp")
    if script.is_file():
        return [str(script.absolute())]
    found = shutil.which("sme-mcp")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "sme_mcp.server.cli"]


def servers_key(client: ClientName) -> str:
    return "servers" if client == "vscode" else "mcpServers"


def server_entry(client: ClientName, serve_args: list[str] | None = None,
                 env: dict[str, str] | None = None) -> dict[str, Any]:
    """One server's entry for `client`: stdio transport, absolute command, `serve` and any extra args."""
    command, *prefix = server_command()
    entry: dict[str, Any] = {}
    if client in ("vscode", "generic"):
        entry["type"] = "stdio"
    entry["command"] = command
    entry["args"] = [*prefix, "serve", *(serve_args or [])]
    if env:
        entry["env"] = dict(env)
    return entry


def snippet(client: ClientName, name: str = "sme-mcp", serve_args: list[str] | None = None,
            env: dict[str, str] | None = None) -> dict[str, Any]:
    """The whole config a client needs for this server, e.g. `{"mcpServers": {"sme-mcp": {...}}}`."""
    return {servers_key(client): {name: server_entry(client, serve_args, env)}}


def merge_into_file(path: Path, client: ClientName, name: str = "sme-mcp", serve_args: list[str] | None = None,
                    env: dict[str, str] | None = None) -> tuple[str, Path | None]:
    """Adds (or replaces) this server in the config file at `path`, keeping every other server and key.

    The file's bytes are copied to `<file>.bak-<UTC time>` before it is rewritten, and the new content
    replaces it atomically (a crash leaves the old file or the new one, never half of one). A missing
    or empty file is created with just this server.

    Returns:
        ("added" | "replaced", the backup's path, or None when there was no file to back up).

    Raises:
        ConfigFileError: The file is not valid JSON, or its top level or servers key is not an object;
            nothing was written.
    """
    from sme_mcp.tools.files import atomic_write_text

    original = path.read_bytes() if path.is_file() else b""
    if original.strip():
        try:
            config = json.loads(original.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigFileError(f"{path} is not UTF-8 text (byte {exc.start}); nothing was changed. Fix or move "
                                  "the file, then run this again") from None
        except json.JSONDecodeError as exc:
            raise ConfigFileError(
                f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); nothing was changed. "
                "Fix the file (comments and trailing commas are not JSON), or add the snippet that "
                "`sme-mcp config` prints by hand") from None
    else:
        config = {}
    if not isinstance(config, dict):
        raise ConfigFileError(f"{path} holds a JSON {type(config).__name__}, not an object; nothing was changed. "
                              "A client config file is one JSON object")
    key = servers_key(client)
    servers = config.setdefault(key, {})
    if not isinstance(servers, dict):
        raise ConfigFileError(f'"{key}" in {path} is a JSON {type(servers).__name__}, not an object of servers; '
                              "nothing was changed. Fix it, then run this again")
    action = "replaced" if name in servers else "added"
    servers[name] = server_entry(client, serve_args, env)
    backup = None
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    if path.exists():
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        n = 1
        while backup.exists():
            n += 1
            backup = backup.with_name(f"{path.name}.bak-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{n}")
        backup.write_bytes(original)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    if mode is not None:
        path.chmod(mode)  # the temp file the atomic write renamed was created 0600
    return action, backup
