"""Runs the MCP server on a transport, with the local LM supervised for the server's lifetime."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Literal

from sme_mcp.experts.service import ExpertService
from sme_mcp.experts.settings import Settings
from sme_mcp.server.app import VERSION, build_server
from sme_mcp.server.local_lm import LocalServer

log = logging.getLogger(__name__)

Transport = Literal["stdio", "sse", "http"]


def make_local(settings: Settings) -> LocalServer | None:
    if not settings.local.enabled:
        return None
    return LocalServer(settings.local, settings.cache_dir, settings.data_dir / "logs")


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def serve(settings: Settings, transport: Transport = "stdio", host: str | None = None, port: int | None = None) -> None:
    """Serves until the client disconnects (stdio) or the process is stopped (HTTP).

    The local llama-server starts loading in the background first, so `tools/list` is answered
    at once; the first LM call waits for it. On exit the llama-server and SymPy workers stop.
    """
    local = make_local(settings)
    service = ExpertService(settings, local)
    server = build_server(service, local)
    signal.signal(signal.SIGTERM, _raise_exit)  # run the finally block on `kill`
    if local is not None:
        local.start()
    try:
        if transport == "stdio":
            server.run()
        else:
            host, port = host or settings.http.host, port or settings.http.port
            _print_connect_hints(transport, host, port, settings)
            if local is not None:
                threading.Thread(target=_announce_ready, args=(local,), daemon=True).start()
            _serve_http(server, settings, transport, host, port)
    except KeyboardInterrupt:
        pass
    finally:
        if local is not None:
            local.stop()
        service.close()


def _serve_http(server: object, settings: Settings, transport: Transport, host: str, port: int) -> None:
    import uvicorn
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *settings.http.allowed_hosts]
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        hosts += [host, f"{host}:*"]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}" for h in hosts] + [f"https://{h}" for h in hosts],
    )
    if transport == "sse":
        app = server.sse_app(transport_security=security, host=host)  # type: ignore[attr-defined]
    else:
        app = server.streamable_http_app(transport_security=security, host=host)  # type: ignore[attr-defined]
    if settings.http.token:
        from sme_mcp.server.http_auth import BearerTokenMiddleware

        app = BearerTokenMiddleware(app, settings.http.token)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _print_connect_hints(transport: Transport, host: str, port: int, settings: Settings) -> None:
    exe = Path(sys.executable).with_name("sme-mcp")
    url = f"http://{host}:{port}" + ("/sse" if transport == "sse" else "/mcp")
    kind = "sse" if transport == "sse" else "http"
    auth = f' --header "Authorization: Bearer {settings.http.token}"' if settings.http.token else ""
    desktop = {"mcpServers": {"sme-mcp": {"command": str(exe), "args": ["serve"]}}}
    print(
        f"sme-mcp {VERSION}: {transport} transport on {url}"
        + (" (bearer token required)" if settings.http.token else "") + "\n"
        f"  MCP Inspector:  npx -y @modelcontextprotocol/inspector --cli {url} --transport {kind}{auth} "
        "--method tools/list\n"
        f"  Claude Desktop (stdio), in claude_desktop_config.json:\n    {json.dumps(desktop)}\n"
        "  The local model loads in the background; tools answer at once, LM answers once it is ready.",
        file=sys.stderr, flush=True,
    )


def _announce_ready(local: LocalServer) -> None:
    try:
        local.base_url(wait=local.settings.startup_timeout)
        print(f"sme-mcp: local model ready ({local.model_name})", file=sys.stderr, flush=True)
    except Exception as exc:
        print(f"sme-mcp: local model unavailable: {exc}", file=sys.stderr, flush=True)
