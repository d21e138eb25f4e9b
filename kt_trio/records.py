"""The vocabulary every layer shares: frozen records a session hands to audit, events and metrics.

Like h11's and wsproto's event classes, these are plain values: producers (policies, the
governance layer, the session) create them, and the one reporting point in a session
(`kt_trio.reporting`) fans them out. Nobody passes dicts between layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from attrs import field, frozen

Direction = Literal["input", "output"]
"""`input` is client → provider, `output` is provider → client (the words DESIGN.md's `apply_to` uses)."""

Action = Literal["allow", "block", "redact", "flag", "close"]


@frozen
class PolicyDecision:
    """What one policy concluded about one message. Never holds the matched text itself."""

    policy: str
    action: Action
    direction: Direction
    reason: str = ""
    score: float | None = None
    redacted_kinds: tuple[str, ...] = ()
    event_type: str | None = None
    event_id: str | None = None


@frozen
class TokenUsage:
    """Token counts in the OpenAI Realtime GA `usage` shape; every field defaults to zero."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_image_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0
    transcription_seconds: float = 0.0
    cached_audio_tokens: int = 0  # of cached_tokens, those that were audio (Realtime)

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(*(getattr(self, f.name) + getattr(other, f.name) for f in self.__attrs_attrs__))


@frozen
class ResponseUsage:
    """Usage of one response (or one transcription) inside a session."""

    session_id: str
    target: str
    model: str
    usage: TokenUsage
    response_id: str | None = None
    kind: Literal["response", "transcription"] = "response"
    # Attribution to the gateway key (its name, never the key) and its team (issue 7).
    key_name: str | None = None
    team: str | None = None
    # USD at the gateway's price table (`kt_trio.pricing`); None: the model has no price.
    cost_usd: float | None = None


@frozen
class ResponseTiming:
    """How long one response took (a Realtime or Responses response inside a session, or one
    HTTP request), for metrics and traces only: never audited nor published (the usage record
    says what was billed; this one says how fast, and it is per-response telemetry, not a fact
    to keep). Times are `time.perf_counter` differences; `ended_at` is wall-clock `time.time()`."""

    session_id: str
    target: str
    model: str
    operation: str  # the GenAI operation name (`kt_trio.telemetry.genai`)
    duration_secs: float
    ended_at: float
    time_to_first_chunk_secs: float | None = None  # streamed answers only
    error_type: str | None = None  # None: it succeeded
    response_id: str | None = None
    usage: TokenUsage | None = None


@frozen
class BreakerTransition:
    target: str
    from_state: Literal["closed", "open", "half_open"]
    to_state: Literal["closed", "open", "half_open"]
    reason: str


@frozen
class BudgetAlert:
    session_id: str
    threshold: float
    used_tokens: int
    max_tokens: int
    exceeded: bool


SpendScope = Literal["key", "team"]
"""Whose daily USD budget: a gateway key's or a team's."""


@frozen
class SpendAlert:
    """A daily USD budget crossed an alert threshold: a gateway key's (`keys create --daily-usd`,
    `budget="key"`) or a team's (`teams.<team>.daily_usd`, `budget="team"`); `name` is the key's
    name (never the key) or the team; `team` the team either way (what team subscribers see)."""

    session_id: str
    threshold: float
    used_usd: float
    max_usd: float
    exceeded: bool
    budget: SpendScope
    name: str
    team: str | None = None


@frozen
class MessageSeen:
    """One relayed (or refused) message, for `audit-logger.log_all_access`.

    `content` is the text as forwarded, i.e. after redaction, and only when the audit logger's
    `include_content` is on; raw client or provider text never appears here.
    """

    session_id: str
    seq: int
    direction: Direction
    event_type: str | None
    event_id: str | None
    size: int
    forwarded: bool
    decisions: tuple[PolicyDecision, ...] = ()
    content: str | None = None


@frozen
class MessagesRelayed:
    """For `features.websocket.message_events`: one relayed message (or, for audio, every audio
    message of one direction over about a second: `count` of them, `size` bytes in all).
    Never content. Only the event stream takes it; the audit log has `MessageSeen`."""

    session_id: str
    direction: Direction
    event_type: str | None
    size: int
    forwarded: bool
    decisions: tuple[PolicyDecision, ...] = ()
    count: int = 1


@frozen
class SessionStarted:
    session_id: str
    route: str
    target: str
    model: str
    client_ip: str
    started_at: float
    user_agent: str | None = None
    key_name: str | None = None
    team: str | None = None


@frozen
class SessionSummary:
    session_id: str
    route: str
    target: str
    model: str
    client_ip: str
    started_at: float
    duration_secs: float
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    close_code: int
    close_reason: str
    closed_by: Literal["client", "upstream", "gateway"]
    usage: TokenUsage = field(factory=TokenUsage)
    key_name: str | None = None
    team: str | None = None
    cost_usd: float | None = None  # the sum of its priced responses; None when none was priced


@frozen
class AdminAction:
    """One action taken through the admin API (`kt_trio.admin`): what, by which admin key (its
    name, never the key), on what. `details` are plain values the action's handler chose; never
    a secret (a created key appears by name and prefix only)."""

    action: str
    admin: str
    target: str | None = None
    details: Mapping[str, str | int | float | bool | None] = field(factory=dict)


Record = (
    PolicyDecision
    | ResponseUsage
    | ResponseTiming
    | BreakerTransition
    | BudgetAlert
    | SpendAlert
    | SessionStarted
    | SessionSummary
    | MessageSeen
    | MessagesRelayed
    | AdminAction
)
