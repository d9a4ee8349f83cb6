"""Where agents meet memnode: MCP, LangChain."""
