"""kt_trio: a governed gateway for LLM real-time WebSocket and chat APIs, on Trio."""

__version__ = "0.1.0"
