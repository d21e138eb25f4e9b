"""Mock providers, served on loopback: `realtime` (the OpenAI Realtime and Responses WebSocket
APIs, scriptable faults), `http` (OpenAI chat completions / Responses / embeddings / files and
Anthropic Messages over HTTP). `kt_trio.testing`, the demo mode, the tests, the benchmarks and the
conformance scenarios use them; they live in the package so the wheel installs only `kt_trio`.

    python -m kt_trio.mocks.realtime --port 9000 [--mode realtime|responses|echo]
"""
