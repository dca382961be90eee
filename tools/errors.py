"""The one base class of errors a user can fix.

Every error whose message says what failed and what to do derives from `SmeError`; the MCP server maps
them to tool errors in one place (server/tool_errors.py `reports_errors`) and the CLI prints them without a
traceback. Anything else that escapes is a bug, reported as one.

Example:
    >>> from sme_mcp.tools.errors import SmeError
    >>> class GoldsetError(SmeError, ValueError): ...
    >>> isinstance(GoldsetError("no such file"), SmeError)
    True
"""

from __future__ import annotations


class SmeError(Exception):
    """An error the user can act on; its message says what failed and what to do."""
