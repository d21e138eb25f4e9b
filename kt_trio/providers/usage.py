"""A provider's token counts as the gateway's `TokenUsage` (pure): the one place text usage of
an HTTP answer is built, whichever provider shape it came in (chat completions, Responses,
Anthropic Messages)."""

from __future__ import annotations

from typing import Any

from kt_trio.records import TokenUsage


def count(v: Any) -> int:
    """A token count as sent, or 0 for anything that is not a whole number."""
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def text_usage(input_tokens: int, output_tokens: int, total_tokens: int = 0, cached_tokens: int = 0) -> TokenUsage:
    """Usage of a text exchange; `total_tokens` 0 (not sent) is the sum."""
    return TokenUsage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=total_tokens or input_tokens + output_tokens,
        cached_tokens=cached_tokens,
        input_text_tokens=input_tokens,
        output_text_tokens=output_tokens,
    )


def cached_of(details: Any) -> int:
    """`*_tokens_details.cached_tokens`, 0 when absent."""
    return count(details.get("cached_tokens")) if isinstance(details, dict) else 0
