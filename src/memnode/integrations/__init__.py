"""Where agents meet memnode: an MCP server (mcp_server) and a LangChain vector store."""
