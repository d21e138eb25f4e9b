"""The OpenAI-compatible HTTP side: `/v1/chat/completions` and `/v1/models` (issue 8).

`sse` parses and writes Server-Sent Events incrementally; `policy` runs the policy chain over
chat messages and streamed deltas; `openai` and `anthropic` are the providers' wire rules (pure);
`app` is the ASGI handler, the only module here that does I/O.
"""
