"""sme-mcp server."""
