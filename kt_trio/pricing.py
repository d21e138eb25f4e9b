"""What a response costs in US dollars (pure): DESIGN.md "Observability and cost".

Prices are USD per 1M tokens, by model: `input`, `cached_input`, `output`, `audio_input`,
`audio_output`. The built-in table holds the providers' public list prices as of
`PRICES_AS_OF`; `pricing.<model>` in the config overrides or adds a model. A dated snapshot name
(`gpt-4o-2024-08-06`, `gpt-realtime-2025-08-28`) takes the price of its longest priced prefix.

How tokens are priced:
- cached input tokens at `cached_input`, never again at `input`;
- audio tokens at the audio rates, text (and image) tokens at the text rates;
- when a usage names cached audio tokens, those are taken out of the audio input and the rest
  of the cached tokens out of the text input; otherwise cached tokens are taken out of the text
  input first (the Responses and Chat APIs cache text prompts).
A model with no price costs nothing and is reported once (`Pricing.unpriced` says which): a
guess would be worse than a gap an operator can see and fill.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from attrs import field, frozen

from kt_trio.records import TokenUsage

PRICES_AS_OF = "2025-10-01"
PER_TOKENS = 1_000_000


@frozen(kw_only=True)
class ModelPrice:
    """USD per 1M tokens. The cached and audio rates default to the text rates they refine."""

    input: float = field(metadata={"check": "non_negative"})
    output: float = field(metadata={"check": "non_negative"})
    cached_input: float | None = field(default=None, metadata={"check": "non_negative"})
    audio_input: float | None = field(default=None, metadata={"check": "non_negative"})
    audio_output: float | None = field(default=None, metadata={"check": "non_negative"})


def _p(i: float, c: float, o: float, ai: float | None = None, ao: float | None = None) -> ModelPrice:
    return ModelPrice(input=i, cached_input=c, output=o, audio_input=ai, audio_output=ao)


# Public list prices (USD per 1M tokens) as of PRICES_AS_OF; override with `pricing.<model>`.
BUILTIN_PRICES: Mapping[str, ModelPrice] = {
    # OpenAI Realtime (audio rates beside text)
    "gpt-realtime": _p(4.00, 0.40, 16.00, 32.00, 64.00),
    "gpt-realtime-mini": _p(0.60, 0.06, 2.40, 10.00, 20.00),
    "gpt-4o-realtime-preview": _p(5.00, 2.50, 20.00, 40.00, 80.00),
    "gpt-4o-mini-realtime-preview": _p(0.60, 0.30, 2.40, 10.00, 20.00),
    "gpt-audio": _p(2.50, 2.50, 10.00, 32.00, 64.00),
    # OpenAI chat and Responses
    "gpt-5": _p(1.25, 0.125, 10.00),
    "gpt-5-mini": _p(0.25, 0.025, 2.00),
    "gpt-5-nano": _p(0.05, 0.005, 0.40),
    "gpt-4.1": _p(2.00, 0.50, 8.00),
    "gpt-4.1-mini": _p(0.40, 0.10, 1.60),
    "gpt-4.1-nano": _p(0.10, 0.025, 0.40),
    "gpt-4o": _p(2.50, 1.25, 10.00),
    "gpt-4o-mini": _p(0.15, 0.075, 0.60),
    "o3": _p(2.00, 0.50, 8.00),
    "o4-mini": _p(1.10, 0.275, 4.40),
    # OpenAI embeddings
    "text-embedding-3-small": _p(0.02, 0.02, 0.0),
    "text-embedding-3-large": _p(0.13, 0.13, 0.0),
    "text-embedding-ada-002": _p(0.10, 0.10, 0.0),
    # Anthropic (cached = cache reads)
    "claude-opus-4-1": _p(15.00, 1.50, 75.00),
    "claude-opus-4": _p(15.00, 1.50, 75.00),
    "claude-sonnet-4-5": _p(3.00, 0.30, 15.00),
    "claude-sonnet-4": _p(3.00, 0.30, 15.00),
    "claude-haiku-4-5": _p(1.00, 0.10, 5.00),
    "claude-3-5-haiku": _p(0.80, 0.08, 4.00),
}


def cost_usd(usage: TokenUsage, price: ModelPrice) -> float:
    """The cost of `usage` at `price` (module docstring for how each token kind is priced)."""
    audio_in = usage.input_audio_tokens
    text_in = usage.input_tokens - audio_in
    cached = min(usage.cached_tokens, usage.input_tokens)
    cached_audio = min(usage.cached_audio_tokens, cached, audio_in)
    cached_text = min(cached - cached_audio, text_in)
    audio_out = usage.output_audio_tokens
    text_out = usage.output_tokens - audio_out
    cached_rate = price.input if price.cached_input is None else price.cached_input
    audio_in_rate = price.input if price.audio_input is None else price.audio_input
    audio_out_rate = price.output if price.audio_output is None else price.audio_output
    dollars = (
        (text_in - cached_text) * price.input
        + (audio_in - cached_audio) * audio_in_rate
        + (cached_text + cached_audio) * cached_rate
        + text_out * price.output
        + audio_out * audio_out_rate
    )
    return round(dollars / PER_TOKENS, 10)


class Pricing:
    """The price table a gateway uses: built-in prices under the config's `pricing.<model>`."""

    def __init__(
        self,
        overrides: Mapping[str, ModelPrice] | None = None,
        *,
        on_unpriced: Callable[[str], None] | None = None,
    ) -> None:
        """`on_unpriced(model)`: called once per model that has no price (a log line and a
        `system` event, by the gateway)."""
        self.prices: dict[str, ModelPrice] = {**BUILTIN_PRICES, **(overrides or {})}
        # Longest name first, so `gpt-4o-mini-2024-07-18` is not priced as `gpt-4o`.
        self._names = sorted(self.prices, key=len, reverse=True)
        self._on_unpriced = on_unpriced
        self.unpriced: set[str] = set()  # bounded by the models clients name that have no price

    def price_of(self, model: str) -> ModelPrice | None:
        found = self.prices.get(model)
        if found is not None:
            return found
        for name in self._names:
            if model.startswith(name) and model[len(name) : len(name) + 1] in ("-", "@", ":"):
                return self.prices[name]
        return None

    def cost(self, model: str, usage: TokenUsage) -> float | None:
        """USD for `usage` of `model`, or None (reported once) when the model has no price."""
        price = self.price_of(model)
        if price is None:
            if model not in self.unpriced and len(self.unpriced) < MAX_UNPRICED_NAMES:
                self.unpriced.add(model)
                if self._on_unpriced is not None:
                    self._on_unpriced(model)
            return None
        return cost_usd(usage, price)


# Model names come from clients: at most this many distinct unpriced names are remembered (and
# reported); past it an unpriced model is still never guessed, only no longer reported.
MAX_UNPRICED_NAMES = 1000
