"""Config fuzz (issue 13): whatever `validate` accepts, `serve` starts and serves one session.

Hypothesis mutates a valid config over the schema: values of the right and the wrong type, URLs
(good, out-of-range ports, non-ASCII, control characters), numbers at and just past their bounds,
NaN and infinities, unknown keys, secrets with odd characters. For each example, the config goes
through the loader exactly as `validate` runs it; when accepted, through `resolve_secrets` and
`Gateway` as `serve` runs them, on a real port in front of the conformance mock, and one
WebSocket client opens a session. The gateway must answer it (a session, or a documented
refusal), stay up (`/healthz`), and shut down cleanly: an exception escaping the gateway's
nursery fails the example. The example count is small and bounded so the suite stays fast.
"""

from __future__ import annotations

import json
import math
import tempfile
from io import StringIO
from pathlib import Path
from typing import Any

import attrs
import trio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from kt_trio.config import ConfigError, load_config_text, resolve_secrets
from kt_trio.mocks.realtime import open_mock_upstream
from kt_trio.server.gateway import Gateway
from kt_trio.testing import serve_gateway
from tests.helpers import http_get

MIB = 1024 * 1024
MOCK = "@MOCK@"  # replaced by the mock provider's ws:// URL once it listens
SECRET_ENV = "KT_FUZZ_SECRET"
# Every refusal a handshake may get (docs/session.md); anything else is a bug.
DOCUMENTED_STATUSES = {400, 401, 403, 404, 426, 429, 502, 503, 504}
# Per example: generous, since a valid config may set a 2 s finish timeout or a slow close.
EXAMPLE_DEADLINE = 20


def base_config() -> dict[str, Any]:
    return {
        "pack": {"name": "fuzz", "version": "1.0.0"},
        "gateway": {
            "shutdown_timeout_secs": 5,
            "websocket": {"max_message_size_bytes": 1048576, "idle_timeout_seconds": 30, "ping_interval_secs": 30},
        },
        "providers": {
            "targets": [
                {"id": "rt", "provider": "openai", "model": "gpt-realtime", "base_url": f"{MOCK}/v1/realtime"},
                {"id": "chat", "provider": "openai", "model": "gpt-4o-mini", "base_url": "http://127.0.0.1:1/v1"},
            ],
            "rate_limit": {"per_connection": {"messages_per_minute": 600}, "per_ip": {"connections": 50}},
            "circuit_breaker": {"failure_threshold": 5, "recovery_timeout_secs": 30},
        },
        "policies": {"chain": ["prompt-injection", "pii-detector", "audit-logger"]},
        "policy": {"audit-logger": {"durability": "batch", "flush_interval_ms": 50}},
        "features": {"websocket": {"enabled": True, "channel_capacity": 64}},
    }


EDGE_NUMBERS = [
    0, -1, 1, 0.5, 0.999, 1.0001, 2, 30, 50, 255, 3600, 3601, 10000, 10001, 36525, 36526, 86400, 86401,
    604800, 604801, 256 * MIB, 256 * MIB + 1, 2**40, 10**9, 10**9 + 1, 10**15, 2**63,
    math.inf, -math.inf, math.nan, 1e-9,
]  # fmt: skip
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
WRONG_TYPES = st.one_of(TEXT, st.booleans(), st.none(), st.lists(st.integers(0, 3), max_size=2), st.just({}))
# Mostly values in range (so many examples pass validation and reach `serve`), then the edges.
NUMBERS = st.one_of(
    st.integers(1, 60),
    st.floats(1.0, 60.0),
    st.integers(1, 60),
    st.sampled_from(EDGE_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
)
HOSTS = st.sampled_from(["127.0.0.1", "localhost", "[::1]", "a..b", "x" * 64, "h\u00e9st", "", "[::1"])
PORTS = st.one_of(st.just(""), st.integers(0, 70000).map(lambda p: f":{p}"), st.sampled_from([":abc", ":-1", ":"]))
PATHS = st.one_of(
    st.sampled_from(["/v1/realtime", "/v1/responses", "/", "", "/v1/r\u00e9al", "/v1\r\nX: y", "/a b", "/\x00"]),
    TEXT.map(lambda t: "/" + t),
)
URLS = st.one_of(
    st.sampled_from([f"{MOCK}/v1/realtime", f"{MOCK}/v1/realtime?x=1", f"{MOCK}/", "ws://127.0.0.1:1/v1/realtime"]),
    st.builds(
        lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
        st.sampled_from(["ws", "wss", "http", "https", "ftp"]),
        HOSTS,
        PORTS,
        PATHS,
    ),
    TEXT,
)
SECRETS = st.one_of(
    st.just("sk-fuzz"),
    st.sampled_from(["sk-fuzz\n", "sk-fuzz\r\n", " sk", "sk\x00", "sk\u00e9", "\t", "sk fuzz"]),
    TEXT,
)

# (dotted path, strategy of the value put there)
NUMERIC_PATHS = [
    "gateway.shutdown_timeout_secs",
    "gateway.websocket.max_message_size_bytes",
    "gateway.websocket.max_upstream_message_size_bytes",
    "gateway.websocket.idle_timeout_seconds",
    "gateway.websocket.ping_interval_secs",
    "gateway.websocket.pong_timeout_secs",
    "gateway.websocket.max_session_secs",
    "gateway.websocket.connect_timeout_secs",
    "providers.targets.0.ping_interval_secs",
    "providers.targets.0.max_message_size_bytes",
    "providers.targets.0.max_upstream_message_size_bytes",
    "providers.targets.0.idle_timeout_secs",
    "providers.targets.0.connect_timeout_secs",
    "providers.targets.0.max_session_secs",
    "providers.rate_limit.per_connection.messages_per_minute",
    "providers.rate_limit.per_ip.connections",
    "providers.circuit_breaker.failure_threshold",
    "providers.circuit_breaker.recovery_timeout_secs",
    "policy.audit-logger.flush_interval_ms",
    "policy.audit-logger.retention_days",
    "policy.prompt-injection.threshold",
    "features.websocket.ping_interval_secs",
    "features.websocket.pong_timeout_secs",
    "features.websocket.max_connections",
    "features.websocket.channel_capacity",
]
MUTATIONS = st.one_of(
    st.tuples(st.sampled_from(NUMERIC_PATHS), NUMBERS),
    st.tuples(st.sampled_from(NUMERIC_PATHS), NUMBERS),
    st.tuples(st.sampled_from(NUMERIC_PATHS), WRONG_TYPES),
    st.tuples(st.sampled_from(["providers.targets.0.base_url", "providers.targets.1.base_url"]), URLS),
    st.tuples(
        st.sampled_from(["providers.targets.0.provider", "providers.targets.1.provider"]),
        st.one_of(st.sampled_from(["openai", "azure-openai", "anthropic"]), WRONG_TYPES),
    ),
    st.tuples(
        st.sampled_from(["providers.targets.0.transport", "providers.targets.1.transport"]),
        st.one_of(st.sampled_from(["websocket", "http"]), WRONG_TYPES),
    ),
    st.tuples(
        st.sampled_from(["providers.targets.0.model", "providers.targets.0.api_version", "pack.name"]),
        st.one_of(TEXT, st.just(None)),
    ),
    st.tuples(st.just("providers.targets.0.secret_key_ref"), st.just({"env": SECRET_ENV})),
    st.tuples(
        st.sampled_from(["policies.chain"]),
        st.lists(st.sampled_from(["prompt-injection", "pii-detector", "audit-logger", "nope", "bot-detector"])),
    ),
    st.tuples(st.just("policy.audit-logger.durability"), st.one_of(st.sampled_from(["batch", "strict"]), TEXT)),
    st.tuples(
        st.sampled_from(["gateway.unknown_key", "providers.targets.0.extra", "features.websocket.tokenz", "zzz"]),
        WRONG_TYPES,
    ),
)


def mutate(config: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = config
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if value is None and last in ("model", "api_version"):
        node.pop(last, None)  # leaving a key out is a mutation too
    else:
        node[last] = value


def dump(config: dict[str, Any]) -> str:
    out = StringIO()
    YAML().dump(config, out)
    return out.getvalue()


async def serve_one_session(text: str, environ: dict[str, str]) -> str:
    """As `validate` then `serve`: the outcome, for hypothesis' statistics."""
    async with open_mock_upstream() as mock:
        text = text.replace(MOCK, mock.url)
        with tempfile.TemporaryDirectory(prefix="kt_fuzz_") as state:
            try:
                config = load_config_text(text, "fuzz.yaml", "yaml", environ)
            except ConfigError as exc:
                assert exc.issues and all(str(i).startswith("fuzz.yaml:") for i in exc.issues)
                return "refused by validate"
            # Each example gets its own state dir (keys.db, audit.db), set after validation.
            config = attrs.evolve(config, gateway=attrs.evolve(config.gateway, state_dir=str(Path(state) / "s")))
            try:
                secrets = resolve_secrets(config, environ)
            except ConfigError as exc:
                # Only an empty secret gets here (validate does not need secrets): a clear error.
                assert environ.get(SECRET_ENV) == "" and "is not set" in str(exc)
                return "refused at start"
            async with serve_gateway(Gateway(config, secrets=secrets)) as gw:
                outcome = await _one_session(gw.ws_url())
                status, _ = await http_get(gw.port, "/healthz")
                assert status == 200
            return outcome


async def _one_session(url: str) -> str:
    try:
        async with open_websocket_url(url, max_message_size=300 * MIB) as ws:
            try:
                await ws.get_message()
                await ws.send_message(json.dumps({"type": "response.create", "event_id": "fuzz"}))
                await ws.get_message()
                return "session"
            except ConnectionClosed as exc:
                code = exc.reason.code
                assert code in (1000, 1001, 1008, 1009, 1011, 1013), code
                return f"session closed {code}"
    except ConnectionRejected as exc:
        assert exc.status_code in DOCUMENTED_STATUSES, exc.status_code
        return f"refused {exc.status_code}"


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(MUTATIONS, min_size=1, max_size=3), secret=SECRETS)
def test_whatever_validate_accepts_serve_serves(mutations: list[tuple[str, Any]], secret: str) -> None:
    config = base_config()
    for path, value in mutations:
        mutate(config, path, value)
    environ = {SECRET_ENV: secret}

    async def run() -> str:
        with trio.fail_after(EXAMPLE_DEADLINE):
            return await serve_one_session(dump(config), environ)

    event(trio.run(run))
