"""The one place where what a tool raises becomes the `ToolError` the client reads.

Every tool function is wrapped in `reports_errors`: an error a user can fix (`SmeError`) keeps its
message, which says what failed and what to do; anything else is a bug, logged with its traceback and
reported as "failed unexpectedly, the server is still running", never as a bare "Error executing tool".

Example:
    >>> import anyio
    >>> from sme_mcp.tools.errors import SmeError
    >>> @reports_errors
    ... async def lookup(key: str) -> str:
    ...     raise SmeError(f"no entry {key!r}; list the entries first")
    >>> try:
    ...     anyio.run(lookup, "x")
    ... except ToolError as exc:
    ...     print(exc)
    lookup: no entry 'x'; list the entries first
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from sme_mcp.tools.errors import SmeError

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def reports_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wraps a tool function so that every failure reaches the client as a `ToolError` that says what to do.

    The wrapper keeps `fn`'s signature and annotations (`functools.wraps`), so `@server.tool()` above it
    derives the same schema and finds the same `Context` parameter as it would on `fn` itself.

    Args:
        fn: An async tool function.

    Returns:
        The wrapped function.
    """
    name = fn.__name__

    @functools.wraps(fn)
    async def tool(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except ToolError:
            raise
        except ValidationError as exc:  # a model built inside the tool from its arguments
            raise ToolError(f"{name}: invalid arguments: {exc.errors(include_input=False)}") from exc
        except SmeError as exc:
            raise ToolError(f"{name}: {exc}") from exc
        except Exception as exc:  # the last net: no failure reaches the client as a bare "Error executing tool"
            log.exception("%s failed unexpectedly", name)
            raise ToolError(f"{name} failed unexpectedly ({type(exc).__name__}: {str(exc)[:200]}); the server is "
                            "still running. Try again; the server log has the details.") from exc

    return tool
