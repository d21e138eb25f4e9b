"""What the gateway knows of each provider, pure (no I/O): where its public endpoints are
(`urls`), how the target's secret goes upstream (`auth`), and the one OpenAI-shaped HTTP error
body the gateway answers with, including a provider's own errors translated to it (`errors`).
The upstream header allow-list is `headers`.
"""
