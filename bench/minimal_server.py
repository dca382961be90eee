"""The floor for startup time: an `MCPServer` with one tool and nothing else, over stdio."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("minimal")


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    return a + b


if __name__ == "__main__":
    server.run()
