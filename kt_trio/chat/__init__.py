"""The OpenAI-compatible HTTP side: `/v1/chat/completions`, `/v1/models` and the `/v1/*`
passthrough (issue 8).

`sse` parses and writes Server-Sent Events incrementally; `policy` runs the policy chain over
chat messages, tool call arguments and streamed deltas; `stream` applies it chunk by chunk;
`openai` and `anthropic` are the providers' wire rules (pure). The modules that do I/O: `app`
(the ASGI handler), `passthrough` (every other `/v1/*` request, streamed both ways) and
`exchange` (what one request hands to the audit log, events, metrics and the key's budget).
"""
