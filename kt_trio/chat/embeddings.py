"""`POST /v1/embeddings` (issue 14): the input policies judge every input string before the
provider sees it; usage is counted like chat's.

- `input` is a string or a list of strings: each is one text slot for the chain (a blocked
  input is 400 `policy_violation`; a redacted one goes upstream redacted).
- Token arrays (`[1, 2, 3]` or lists of them) cannot be read as text: DESIGN.md refuses them with
  400 when the chain has an input text policy (they would be a route around it), and passes them
  as they are when it has none.
- The answer (vectors) carries no text: no output policy reads it; its `usage.prompt_tokens` is
  counted as input tokens.
- Targets: `openai` and `azure-openai` (by `model`, as chat); Anthropic has no embeddings API,
  so a request routed to an anthropic target is 400.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from kt_trio.chat import openai
from kt_trio.chat.asgi_io import respond
from kt_trio.chat.door import answered, judged
from kt_trio.chat.policy import Slot, judge_slots
from kt_trio.chat.upstream import http_candidates, read_limited, upstream_response
from kt_trio.config.schema import Target
from kt_trio.keys import KeyInfo
from kt_trio.protocol.errors import dumps
from kt_trio.providers.errors import refusal
from kt_trio.providers.urls import embeddings_url
from kt_trio.records import PolicyDecision, TokenUsage
from kt_trio.telemetry.genai import EMBEDDINGS

if TYPE_CHECKING:
    from kt_trio.chat.app import ChatApp, Receive, Scope, Send

ROUTE = "/v1/embeddings"
EVENT_TYPE = "embeddings"


def input_slots(request: dict[str, Any]) -> list[Slot] | None:
    """The text slots of `input`, or None when it holds token arrays."""
    value = request.get("input")
    if isinstance(value, str):
        return [(request, "input")]
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return [(value, i) for i in range(len(value))]
        return None
    raise refusal(400, "invalid_request_error", "invalid_request", "'input' must be a string or an array.")


async def embeddings(app: ChatApp, scope: Scope, receive: Receive, send: Send, key: KeyInfo | None) -> None:
    request, size = await app.read_request(receive)
    primary = app.target_for(request, key, scope)
    if primary.provider == "anthropic":
        raise refusal(400, "invalid_request_error", "unsupported_model", f"{primary.model!r} has no embeddings API.")
    slots = input_slots(request)
    policies = app.chain.input_text_policies
    if slots is None and policies:
        raise refusal(
            400,
            "invalid_request_error",
            "token_input_not_allowed",
            "Token-array inputs cannot be checked by the gateway's input policies; send the text.",
        )
    admitted = await app.admit(key)
    ex = app.exchange("emb_", ROUTE, primary, scope, key, admitted=admitted, event_type=EVENT_TYPE)
    async with ex.until_finished():
        ex.start(size)
        send = ex.wrap(send)

        def judge(decisions: list[PolicyDecision]) -> None:
            if slots and policies:
                judge_slots(slots, policies, "input", decisions)

        if not await judged(ex, request, judge, send):
            return

        def build(target: Target) -> tuple[str, bytes, dict[str, str]]:
            body = dict(request)
            if target.provider == "openai" and target.model is not None:
                body["model"] = target.model
            elif target.provider == "azure-openai":
                body.pop("model", None)  # the deployment names the model
            return embeddings_url(target), dumps(body), openai.headers(target, app.secrets.get(target.id), stream=False)

        candidates = [t for t in http_candidates(app.config, primary) if t.provider != "anthropic"]

        async def work() -> None:
            async with upstream_response(app.client, app.config, app.health, candidates, build, EMBEDDINGS) as (
                target,
                resp,
            ):
                ex.target = target
                raw = await read_limited(resp)
            ex.usage(target, _usage(raw), None)
            await respond(send, 200, raw)

        await answered(ex, receive, send, work)


def _usage(raw: bytes) -> TokenUsage | None:
    try:
        usage = json.loads(raw).get("usage")
    except (ValueError, AttributeError):
        return None
    if not isinstance(usage, dict):
        return None
    return openai.usage_of({"prompt_tokens": usage.get("prompt_tokens"), "total_tokens": usage.get("total_tokens")})
