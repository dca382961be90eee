"""The stdio transport, answering lines it cannot use with a JSON-RPC error instead of dropping them.

mcp 2.3.0's `stdio_server` hands a line that does not validate to the session as an exception, which
logs it at debug level and replies nothing: a client that sent invalid JSON, a bad escape or a batch
waits for ever. Streamable HTTP answers such bodies with -32700 / -32600; this transport does the same
on stdout. Everything else (taking over fd 0 and 1 so stray prints miss the wire, UTF-8 framing, one
message per line) is the SDK's own code, reused.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import mcp_types as types
from mcp.server import stdio as sdk_stdio
from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage
from mcp_types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError

log = logging.getLogger(__name__)


def error_for_line(line: str) -> JSONRPCError | None:
    """The JSON-RPC error reply to a line that is not a valid message; None for a blank line.

    Invalid JSON is a parse error (-32700, id null). A batch (MCP has none since 2025-06-18), a value
    that is not an object, or an object that is not a valid request is an invalid request (-32600),
    with the request's id when it has a usable one. The message never quotes the line.
    """
    if not line.strip():
        return None
    try:
        decoded: Any = json.loads(line)
    except (ValueError, RecursionError) as exc:
        where = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        return _error(None, PARSE_ERROR, f"Parse error: the line is not valid JSON{where}; send one JSON-RPC "
                                         "message per line")
    if isinstance(decoded, list):
        return _error(None, INVALID_REQUEST, "Invalid request: batches are not supported; send each JSON-RPC "
                                             "message on its own line")
    if not isinstance(decoded, dict):
        return _error(None, INVALID_REQUEST, "Invalid request: a JSON-RPC message must be a JSON object")
    request_id = decoded.get("id")
    usable = isinstance(request_id, str | int) and not isinstance(request_id, bool)
    return _error(request_id if usable and "method" in decoded else None, INVALID_REQUEST,
                  "Invalid request: not a valid JSON-RPC 2.0 request, notification or response "
                  "(it needs \"jsonrpc\": \"2.0\", a string \"method\" and, for a request, an \"id\")")


def _error(request_id: str | int | None, code: int, message: str) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))


@asynccontextmanager
async def stdio_server_answering_errors() -> AsyncIterator[tuple[Any, Any]]:
    """Like `mcp.server.stdio.stdio_server()`, but a line that is not a valid message gets an error reply.

    Yields the (read, write) stream pair the low-level server runs on.
    """
    restore_stdin = restore_stdout = None
    try:
        stdin_buffer, restore_stdin = sdk_stdio._claim_fd(0, sys.stdin, "rb", sdk_stdio._open_stdin_diversion)
        stdin = anyio.wrap_file(sdk_stdio._UnownedTextWrapper(stdin_buffer, encoding="utf-8", errors="replace"))
        stdout_buffer, restore_stdout = sdk_stdio._claim_fd(1, sys.stdout, "wb", sdk_stdio._open_stdout_diversion)
        stdout = anyio.wrap_file(sdk_stdio._UnownedTextWrapper(stdout_buffer, encoding="utf-8"))

        read_stream_writer, read_stream = create_context_streams[SessionMessage | Exception](0)
        write_stream, write_stream_reader = create_context_streams[SessionMessage](0)
        # The reader's error replies and the session's messages share stdout through one writer task.
        replies_send, replies_receive = anyio.create_memory_object_stream[SessionMessage](16)

        async def stdin_reader() -> None:
            try:
                async with read_stream_writer, replies_send:
                    async for line in stdin:
                        try:
                            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                        except Exception:  # a ValidationError, whatever the line's fault
                            error = error_for_line(line)
                            if error is not None:
                                log.info("answered an unusable stdin line with JSON-RPC error %s", error.error.code)
                                await replies_send.send(SessionMessage(error))
                            continue
                        await read_stream_writer.send(SessionMessage(message))
            except anyio.ClosedResourceError:
                await anyio.lowlevel.checkpoint()

        write_lock = anyio.Lock()  # one whole line at a time on stdout

        async def write(session_message: SessionMessage) -> None:
            text = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
            async with write_lock:
                await stdout.write(text + "\n")
                await stdout.flush()

        async def stdout_writer() -> None:
            try:
                async with write_stream_reader, replies_receive, anyio.create_task_group() as tg:
                    async def relay_replies() -> None:
                        async for reply in replies_receive:
                            await write(reply)

                    tg.start_soon(relay_replies)
                    async for session_message in write_stream_reader:
                        await write(session_message)
                    tg.cancel_scope.cancel()
            except anyio.ClosedResourceError:
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            tg.start_soon(stdin_reader)
            tg.start_soon(stdout_writer)
            yield read_stream, write_stream
    finally:
        if restore_stdout is not None:
            restore_stdout()
        if restore_stdin is not None:
            restore_stdin()


async def run_stdio(server: Any) -> None:
    """Serves `server` (an `MCPServer`) on stdin/stdout until the client closes stdin."""
    lowlevel = server._lowlevel_server  # what MCPServer.run_stdio_async runs (mcp 2.3.0)
    async with stdio_server_answering_errors() as (read_stream, write_stream):
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
