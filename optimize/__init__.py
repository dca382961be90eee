"""sme-mcp optimize."""
