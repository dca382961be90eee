"""Runs the MCP server on a transport, with the local LM supervised for the server's lifetime."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sme_mcp.config.settings import LocalServerSettings, Settings
from sme_mcp.experts.service import ExpertService
from sme_mcp.server import cpu_load
from sme_mcp.server.adaptive_local import AdaptiveLocal
from sme_mcp.server.app import VERSION, build_server
from sme_mcp.server.local_fleet import LocalFleet
from sme_mcp.server.local_lm import LocalServer

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

Transport = Literal["stdio", "sse", "http"]


def make_local(settings: Settings) -> LocalServer | LocalFleet | AdaptiveLocal | None:
    """The supervised local LM: one llama-server, `SME_LOCAL__REPLICAS` of them, or the adaptive pair whose
    threads follow the machine's load (`uses_adaptive_threads`); None when disabled."""
    local, logs = settings.local, settings.data_dir / "logs"
    if not local.enabled:
        return None
    if local.replicas > 1:
        return LocalFleet(local, settings.cache_dir, logs)
    if uses_adaptive_threads(local):
        return AdaptiveLocal(local, settings.cache_dir, logs)
    return LocalServer(local, settings.cache_dir, logs)


def uses_adaptive_threads(local: LocalServerSettings, cpus: int | None = None) -> bool:
    """Whether the threads follow the load: on by default, unless threads are set, replicas run, the machine
    has 1 or more than 4 cores, or there is no /proc to read the load from."""
    cpus = cpus or os.cpu_count() or 1
    chosen = {"threads", "threads_batch"} & local.model_fields_set
    return (local.adaptive_threads and not chosen and local.replicas == 1 and 2 <= cpus <= 4
            and cpu_load.available())


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def serve(settings: Settings, transport: Transport = "stdio", host: str | None = None, port: int | None = None) -> None:
    """Serves until the client disconnects (stdio) or the process is stopped (HTTP).

    The local llama-server starts loading in the background first, so `tools/list` is answered
    at once; the first LM call waits for it. On exit the llama-server and SymPy workers stop.

    They live for the process, here, not in an `MCPServer(lifespan=...)`: the SDK enters a lifespan
    once per connection on stdio and SSE (`Server.run`) and once per session manager on streamable
    HTTP, so on SSE a lifespan would load one model per client.
    """
    local = make_local(settings)
    service = ExpertService(settings, local)
    server = build_server(service, local)
    signal.signal(signal.SIGTERM, _raise_exit)  # run the finally block on `kill`
    if local is not None:
        local.start()
    try:
        if transport == "stdio":
            import anyio

            from sme_mcp.server.stdio_transport import run_stdio

            anyio.run(run_stdio, server)  # a malformed line gets a JSON-RPC error reply, as over HTTP
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
    uvicorn.Server(http_config(app, settings, host, port)).run()


def http_config(app: object, settings: Settings, host: str, port: int) -> uvicorn.Config:
    """The uvicorn configuration: every connection must send a complete request within `request_timeout`,
    idle keep-alive connections close after `keep_alive_timeout`, open connections are capped below the
    descriptor limit, and floods of identical log messages are logged once a minute."""
    import uvicorn

    from sme_mcp.server.http_hardening import connection_cap, hardened_protocol, install_log_limits

    http = settings.http
    cap = connection_cap(http.max_connections)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning",
        http=hardened_protocol(http.request_timeout, cap),
        timeout_keep_alive=http.keep_alive_timeout,
        # uvicorn answers 503 past this many connections or request tasks; the protocol's cap on connections
        # comes first, so this only bounds tasks (a finished response's task can linger for a moment).
        limit_concurrency=2 * cap + 16,
        h11_max_incomplete_event_size=http.max_header_bytes,
        backlog=max(16, min(2048, cap)),
    )
    install_log_limits()  # after uvicorn.Config, which (re)configures its loggers
    return config


def _print_connect_hints(transport: Transport, host: str, port: int, settings: Settings) -> None:
    exe = Path(sys.executable).with_name("sme-mcp")
    url = f"http://{host}:{port}" + ("/sse" if transport == "sse" else "/mcp")
    kind = "sse" if transport == "sse" else "http"
    # Never the token itself: start-up output ends up in terminals, logs and screenshots.
    auth = ' --header "Authorization: Bearer $SME_HTTP__TOKEN"' if settings.http.token else ""
    desktop = {"mcpServers": {"sme-mcp": {"command": str(exe), "args": ["serve"]}}}
    print(
        f"sme-mcp {VERSION}: {transport} transport on {url}"
        + (" (bearer token required; the hint below expects it in $SME_HTTP__TOKEN)" if settings.http.token
           else "") + "\n"
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
