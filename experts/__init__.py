"""sme-mcp experts."""
