"""Plain-Python tools shared by the experts and the MCP server: safe SymPy parsing and computation."""
