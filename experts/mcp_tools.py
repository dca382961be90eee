"""Tools from other MCP servers, for a declared expert's ReAct: this server connects to them as a client.

Each `MCPToolServer` owns one connection (a stdio child process or an HTTP URL, from the user's own
expert declaration: no MCP client can name one) on a background event loop, so the experts' sync DSPy
code calls the tools like plain functions. A server that cannot start, a tool that is not there and a
call that fails or times out are `MCPToolError`s that name the expert and the server; they fail that
expert's answer only.

Example:
    >>> server = MCPToolServer("timezone", "time", command=["python", "-m", "mcp_server_time"],
    ...                        allowed_tools=["convert_time"])  # doctest: +SKIP
    >>> [tool.name for tool in server.dspy_tools()]  # doctest: +SKIP
    ['convert_time']
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from typing import Any

from sme_mcp.tools.errors import SmeError

log = logging.getLogger(__name__)
MAX_OBSERVATION_CHARS = 4000  # a tool result longer than this is cut: every later ReAct prompt carries it


class MCPToolError(SmeError, RuntimeError):
    """An MCP tool server of a declared expert failed; the message names the expert, the server and what to do."""


class MCPToolServer:
    """One MCP server a declared expert takes tools from, connected on first use.

    Args:
        expert: The expert's name (for messages).
        name: The server's name in the declaration.
        command: A stdio server's command line (program and arguments), or None.
        url: A Streamable HTTP server's URL, or None. Exactly one of `command` and `url`.
        allowed_tools: The tools the expert may call; each must exist on the server.
        env: Extra environment variables for a stdio server.
        timeout: Seconds to connect, and seconds one tool call may take.
    """

    def __init__(self, expert: str, name: str, *, command: list[str] | None = None, url: str | None = None,
                 allowed_tools: list[str], env: dict[str, str] | None = None, timeout: float = 30.0) -> None:
        if (command is None) == (url is None):
            raise ValueError("give exactly one of command and url")
        self.expert, self.name, self.command, self.url = expert, name, command, url
        self.allowed_tools, self.env, self.timeout = list(allowed_tools), env, timeout
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._stop: asyncio.Event | None = None
        self._tools: list[Any] | None = None

    @property
    def where(self) -> str:
        return " ".join(self.command) if self.command else str(self.url)

    def _error(self, what: str) -> MCPToolError:
        return MCPToolError(f"the {self.expert} expert's MCP tool server {self.name!r} ({self.where}) {what}. Check "
                            "the server in the expert's declaration (SME_EXPERT_FILES); other experts are unaffected.")

    # -- connection ------------------------------------------------------------------------------

    def _connect(self) -> None:
        from mcp import Client, StdioServerParameters

        target: Any
        if self.command:
            import os

            target = StdioServerParameters(command=self.command[0], args=self.command[1:],
                                           env={**os.environ, **(self.env or {})})
        else:
            target = self.url
        loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[list[Any]] = concurrent.futures.Future()

        async def hold() -> None:
            self._stop = asyncio.Event()
            try:
                async with Client(target) as client:
                    self._client = client
                    listed = await client.list_tools()
                    ready.set_result(list(listed.tools))
                    await self._stop.wait()
            except BaseException as exc:  # the caller waiting on `ready` gets the reason
                if not ready.done():
                    ready.set_exception(exc)
                else:
                    log.warning("MCP tool server %s of %s closed: %s", self.name, self.expert, exc)
            finally:
                self._client = None

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(hold())
            loop.close()

        thread = threading.Thread(target=run, name=f"mcp-tools-{self.expert}-{self.name}", daemon=True)
        thread.start()
        try:
            tools = ready.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            self._loop, self._thread = loop, thread
            self.close()
            raise self._error(f"did not answer tools/list within {self.timeout:g} s") from None
        except Exception as exc:
            thread.join(timeout=5)
            raise self._error(f"could not be started or reached ({type(exc).__name__}: {str(exc)[:300]})") from exc
        self._loop, self._thread = loop, thread
        by_name = {tool.name: tool for tool in tools}
        missing = [t for t in self.allowed_tools if t not in by_name]
        if missing:
            self.close()
            raise self._error(f"has no tool {', '.join(map(repr, missing))}; it has {', '.join(sorted(by_name))}")
        self._tools = [by_name[t] for t in self.allowed_tools]

    def mcp_tools(self) -> list[Any]:
        """The allowed tools' MCP descriptions, connecting first if needed.

        Raises:
            MCPToolError: The server did not start, did not answer, or lacks an allowed tool.
        """
        with self._lock:
            if self._tools is None or self._client is None:
                self._connect()
            assert self._tools is not None
            return list(self._tools)

    def call(self, tool: str, arguments: dict[str, Any]) -> str:
        """Calls one allowed tool and returns its result as text (an error result comes back as "Error: ...").

        Raises:
            MCPToolError: The tool is not allowed, or the server is gone or did not answer in time.
        """
        if tool not in self.allowed_tools:
            raise self._error(f"was asked for tool {tool!r}, which the declaration does not allow")
        self.mcp_tools()
        client, loop = self._client, self._loop
        if client is None or loop is None:
            raise self._error("is not connected")
        future = asyncio.run_coroutine_threadsafe(client.call_tool(tool, arguments), loop)
        try:
            result = future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise self._error(f"did not answer a {tool} call within {self.timeout:g} s") from None
        except Exception as exc:
            with self._lock:
                self._tools = None  # reconnect on the next call: the server may have died
            raise self._error(f"failed a {tool} call ({type(exc).__name__}: {str(exc)[:300]})") from exc
        text = _result_text(result)
        if getattr(result, "is_error", False):
            return f"Error: {text}"[:MAX_OBSERVATION_CHARS]  # the model reads it and may correct its arguments
        return text[:MAX_OBSERVATION_CHARS]

    def dspy_tools(self) -> list[Any]:
        """The allowed tools as `dspy.Tool`s with the servers' names, descriptions and argument schemas."""
        import dspy
        from dspy.adapters.types.tool import convert_input_schema_to_tool_args

        out = []
        for tool in self.mcp_tools():
            args, arg_types, arg_desc = convert_input_schema_to_tool_args(tool.input_schema or {})

            def call(_name: str = tool.name, **kwargs: Any) -> str:
                return self.call(_name, kwargs)

            out.append(dspy.Tool(func=call, name=tool.name, desc=tool.description or tool.name, args=args,
                                 arg_types=arg_types, arg_desc=arg_desc))
        return out

    def close(self) -> None:
        """Disconnects (a stdio server's process ends with its stdin)."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(timeout=10)
        self._loop = self._thread = self._client = None
        self._tools = None


def _result_text(result: Any) -> str:
    structured = getattr(result, "structured_content", None)
    if structured:
        return json.dumps(structured, ensure_ascii=False)
    parts = [getattr(c, "text", None) for c in getattr(result, "content", []) or []]
    return "\n".join(p for p in parts if p) or "(no text result)"
