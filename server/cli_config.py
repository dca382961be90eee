"""`sme-mcp config CLIENT [--write FILE]`: print, or merge into a client's config, the stdio server entry."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sme_mcp.server.client_config import CLIENTS, CONFIG_FILES


def add_config_parser(subparsers: Any) -> None:
    """Adds the `config` subcommand to the `sme-mcp` parser's subparsers."""
    where = "; ".join(f"{client}: {path}" for client, path in CONFIG_FILES.items())
    p = subparsers.add_parser(
        "config", help="print the JSON that connects an MCP client to this installation (stdio)",
        description="Prints the client's config snippet with the absolute path of this environment's sme-mcp. "
        f"Config files: {where}.")
    p.add_argument("client", choices=CLIENTS)
    p.add_argument("--write", metavar="FILE", default=None,
                   help="merge the entry into this config file, keeping every other server and key; the old file "
                   "is kept as FILE.bak-<time>; a file that is not valid JSON is refused and left as it is")
    p.add_argument("--name", default="sme-mcp", help="the server's name in the config (default sme-mcp)")
    p.add_argument("--no-local", action="store_true", help="serve without launching the local llama-server")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="an environment variable for the server, e.g. SME_DATA_DIR=/path (repeatable)")
    p.set_defaults(func=cmd_config)


def cmd_config(args: argparse.Namespace) -> int:
    """Prints the snippet, or merges it into --write FILE; exit 2 when the file or an --env cannot be used."""
    from sme_mcp.server.client_config import ConfigFileError, merge_into_file, snippet

    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"error: --env {item!r} is not KEY=VALUE", file=sys.stderr)
            return 2
        env[key] = value
    serve_args = ["--no-local"] if args.no_local else []
    if args.write is None:
        print(json.dumps(snippet(args.client, args.name, serve_args, env), indent=2))
        return 0
    path = Path(args.write).expanduser()
    try:
        action, backup = merge_into_file(path, args.client, args.name, serve_args, env)
    except (ConfigFileError, OSError) as exc:
        reason = exc if isinstance(exc, ConfigFileError) else f"cannot write {path}: {exc.strerror or exc}"
        print(f"error: {reason}", file=sys.stderr)
        return 2
    kept = f"; the previous file is {backup}" if backup else ""
    print(f"{action} server {args.name!r} in {path}{kept}. Restart {args.client} to load it.", file=sys.stderr)
    return 0
