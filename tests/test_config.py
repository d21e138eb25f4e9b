"""Config loading: the documented examples load, defaults match DESIGN.md, and every mistake is
reported as `FILE:LINE:COL: dotted.path: message`, all of them in one run."""

from __future__ import annotations

from pathlib import Path

import pytest

from kt_trio.config import (
    DEFAULT_CHAIN,
    AuditLoggerSettings,
    ConfigError,
    GatewayConfig,
    PiiDetectorSettings,
    SessionSettings,
    Target,
    default_config,
    load_config,
    load_config_text,
    resolve_secrets,
    summarize,
)

CONFIGS = Path(__file__).parent / "data" / "configs"
EXAMPLES = sorted(p for p in CONFIGS.iterdir() if p.suffix in (".yaml", ".toml"))
BAD = CONFIGS / "bad"


def errors_of(text: str, fmt: str = "yaml", environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "c.yaml" if fmt == "yaml" else "c.toml", fmt, environ or {})  # type: ignore[arg-type]
    return [str(issue) for issue in info.value.issues]


MINIMAL = """\
providers:
  targets:
    - id: t1
      provider: openai
      model: gpt-4o-realtime-preview
"""


# --- the examples ---------------------------------------------------------------------------


def test_all_six_shared_examples_are_fixtures() -> None:
    assert len(EXAMPLES) == 6


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_shared_example_loads(path: Path) -> None:
    config = load_config(path, environ={})
    assert config.pack.enabled
    assert config.providers.targets
    assert config.origin is not None and config.origin.file == str(path)


def test_realtime_chat_with_safety_values() -> None:
    config = load_config(CONFIGS / "realtime-chat-with-safety.yaml", environ={})
    (target,) = config.providers.targets
    assert target.id == "openai-realtime"
    assert target.effective_transport == "websocket"
    assert target.ping_interval_secs == 30.0
    assert target.idle_timeout_secs == 300.0
    assert config.providers.rate_limit.per_connection.messages_per_minute == 30
    assert config.providers.rate_limit.per_connection.mode == "reject"
    assert config.providers.rate_limit.per_ip.connections == 5
    assert config.providers.circuit_breaker.failure_threshold == 5
    assert config.policies.chain == (
        "prompt-injection",
        "pii-detector",
        "safety-filter",
        "bot-detector",
        "audit-logger",
    )
    assert config.policy_settings("safety-filter").categories == ("hate", "violence", "sexual")  # type: ignore[union-attr]
    assert config.policy_settings("prompt-injection").threshold == 0.8  # type: ignore[union-attr]
    # Not configured: that policy's documented defaults.
    assert config.policy_settings("bot-detector").action == "flag"


def test_toml_example_loads_event_stream_settings() -> None:
    config = load_config(CONFIGS / "events-development.toml", environ={})
    events = config.features.websocket
    assert (events.max_connections, events.channel_capacity) == (100, 256)
    assert config.providers.targets[0].secret_key_ref is not None
    assert config.providers.targets[0].secret_key_ref.env == "OPENAI_API_KEY"


def test_toml_and_yaml_with_the_same_content_are_equal() -> None:
    toml = """\
[pack]
name = "p"
version = "1.0.0"

[[providers.targets]]
id = "t1"
provider = "openai"
model = "gpt-4o-realtime-preview"
"""
    yaml = "pack:\n  name: p\n  version: 1.0.0\n" + MINIMAL
    assert load_config_text(toml, "a.toml", "toml") == load_config_text(yaml, "a.yaml")


# --- defaults -------------------------------------------------------------------------------


def test_documented_defaults() -> None:
    config = load_config_text(MINIMAL, "c.yaml")
    ws = config.gateway.websocket
    assert ws.enabled is True
    assert ws.max_message_size_bytes == 1_048_576
    assert ws.max_upstream_message_size_bytes == 16_777_216
    assert ws.idle_timeout_seconds == 300
    assert ws.ping_interval_secs == 30
    assert ws.pong_timeout_secs == 60
    assert ws.max_session_secs == 3600
    assert ws.connect_timeout_secs == 10
    assert config.gateway.state_dir == "./.kt_trio"
    assert config.gateway.shutdown_timeout_secs == 10
    assert config.gateway.trusted_proxies == ()
    assert config.gateway.auth.require_keys is False
    assert config.providers.circuit_breaker.failure_threshold == 5
    assert config.providers.circuit_breaker.recovery_timeout_secs == 30
    assert config.providers.rate_limit.per_connection.mode == "reject"
    assert config.providers.rate_limit.per_connection.exclude_types == ()
    events = config.features.websocket
    assert (events.enabled, events.require_auth) == (True, False)
    assert (events.ping_interval_secs, events.pong_timeout_secs) == (30, 60)
    assert (events.max_connections, events.channel_capacity) == (1000, 1024)
    assert (events.tokens, events.allowed_origins) == ((), ())


def test_policy_defaults() -> None:
    config = GatewayConfig()
    assert config.policy_settings("prompt-injection").action == "block"
    assert config.policy_settings("prompt-injection").threshold == 0.8  # type: ignore[union-attr]
    pii = config.policy_settings("pii-detector")
    assert isinstance(pii, PiiDetectorSettings)
    assert pii.action == "redact"
    assert set(pii.detect_patterns) == {
        *("email", "phone", "credit_card", "ssn", "iban", "ip_address", "name", "national_id")
    }
    safety = config.policy_settings("safety-filter")
    assert safety.action == "block"
    assert set(safety.categories) == {"hate", "violence", "sexual", "self-harm", "harassment"}  # type: ignore[union-attr]
    assert config.policy_settings("bot-detector").action == "flag"
    audit = config.policy_settings("audit-logger")
    assert isinstance(audit, AuditLoggerSettings)
    assert (audit.include_content, audit.durability, audit.flush_interval_ms) == (False, "batch", 50)
    budget = config.policy_settings("session-budget")
    assert budget.alert_thresholds == (0.5, 0.8, 1.0)  # type: ignore[union-attr]
    assert budget.action == "block"
    for name in DEFAULT_CHAIN:
        assert config.policy_settings(name).on_error == "block"


def test_empty_policy_block_means_defaults() -> None:
    config = load_config_text(MINIMAL + "policy:\n  pii-detector:\n", "c.yaml")
    assert config.policy["pii-detector"] == PiiDetectorSettings()


def test_int_is_accepted_where_a_float_is_expected() -> None:
    config = load_config_text(MINIMAL + "gateway:\n  shutdown_timeout_secs: 5\n", "c.yaml")
    assert config.gateway.shutdown_timeout_secs == 5.0
    assert isinstance(config.gateway.shutdown_timeout_secs, float)


def test_empty_file_is_all_defaults() -> None:
    assert load_config_text("", "c.yaml") == GatewayConfig()


def test_default_config() -> None:
    target = Target(id="mock", provider="openai", model="m", base_url="ws://127.0.0.1:9/v1/realtime")
    config = default_config([target])
    assert config.policies.chain == DEFAULT_CHAIN
    assert config.find_websocket_target(None) == target


# --- errors: exact lines --------------------------------------------------------------------


def test_unknown_key_with_did_you_mean() -> None:
    text = MINIMAL + "      modle: x\n"
    assert errors_of(text) == ["c.yaml:6:7: providers.targets[0].modle: unknown key 'modle' (did you mean 'model'?)"]


def test_unknown_key_without_close_match_lists_known_keys() -> None:
    assert errors_of("features:\n  zzz: 1\n") == ["c.yaml:2:3: features.zzz: unknown key 'zzz' (known keys: websocket)"]


def test_missing_required_key_is_reported_at_the_parent() -> None:
    text = "providers:\n  targets:\n    - id: t1\n      model: m\n"
    assert errors_of(text) == ["c.yaml:3:7: providers.targets[0].provider: missing required key"]


def test_wrong_types() -> None:
    text = MINIMAL + (
        "gateway:\n"
        "  websocket:\n"
        "    max_message_size_bytes: '12'\n"
        "    idle_timeout_seconds: true\n"
        "    enabled: 1\n"
        "features:\n"
        "  websocket:\n"
        "    max_connections: 12.5\n"
    )
    assert errors_of(text) == [
        "c.yaml:8:29: gateway.websocket.max_message_size_bytes: expected an integer, got a string",
        "c.yaml:9:27: gateway.websocket.idle_timeout_seconds: expected a number, got a boolean",
        "c.yaml:10:14: gateway.websocket.enabled: expected a boolean, got an integer",
        "c.yaml:13:22: features.websocket.max_connections: expected an integer, got a number",
    ]


def test_bad_enum_lists_allowed_values() -> None:
    text = MINIMAL.replace("provider: openai", "provider: opneai")
    assert errors_of(text) == [
        "c.yaml:4:17: providers.targets[0].provider: 'opneai' is not one of: openai, azure-openai, anthropic"
        " (did you mean 'openai'?)"
    ]


def test_unknown_policy_names() -> None:
    text = (
        MINIMAL + "policies:\n  chain: [pii-detector, safty-filter]\npolicy:\n  prompt-injektion:\n    threshold: 0.5\n"
    )
    assert errors_of(text) == [
        "c.yaml:7:25: policies.chain[1]: unknown policy 'safty-filter' (did you mean 'safety-filter'?)",
        "c.yaml:9:3: policy.prompt-injektion: unknown policy 'prompt-injektion' (did you mean 'prompt-injection'?)",
    ]


def test_duplicate_target_ids_and_unknown_fallback() -> None:
    text = MINIMAL + ("    - id: t1\n      provider: openai\n      model: gpt-4o\n  fallback:\n    t1: [t2]\n")
    assert errors_of(text) == [
        "c.yaml:6:11: providers.targets[1].id: duplicate target id 't1' (first on line 3)",
        "c.yaml:10:10: providers.fallback.t1[0]: unknown target id 't2'",
    ]


def test_azure_without_base_url() -> None:
    text = MINIMAL.replace("provider: openai", "provider: azure-openai")
    assert errors_of(text) == ["c.yaml:3:7: providers.targets[0].base_url: an azure-openai target needs a base_url"]


def test_numbers_must_be_positive() -> None:
    text = MINIMAL + "      idle_timeout_secs: 0\n      max_message_size_bytes: -5\n"
    assert errors_of(text) == [
        "c.yaml:6:26: providers.targets[0].idle_timeout_secs: must be greater than 0",
        "c.yaml:7:31: providers.targets[0].max_message_size_bytes: must be greater than 0",
    ]


def test_threshold_must_be_in_unit_interval() -> None:
    text = MINIMAL + "policy:\n  prompt-injection:\n    threshold: 1.5\n"
    assert errors_of(text) == ["c.yaml:8:16: policy.prompt-injection.threshold: must be between 0 and 1"]


def test_transport_must_match_base_url_scheme() -> None:
    text = MINIMAL + "      base_url: https://example.com/v1\n      transport: websocket\n"
    assert errors_of(text) == [
        "c.yaml:7:18: providers.targets[0].transport: transport websocket needs a ws:// or wss:// base_url"
    ]


def test_all_errors_are_reported_at_once() -> None:
    path = BAD / "many-errors.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    lines = str(info.value).splitlines()
    # `model` may be left out (a target routed to by its id), so `modle` is the only mistake there.
    assert len(lines) == len(info.value.issues) == 12
    f = str(path)
    assert f"{f}:4:12: pack.version: expected a string, got a number (put it in quotes)" in lines
    assert f"{f}:9:7: providers.targets[0].modle: unknown key 'modle' (did you mean 'model'?)" in lines
    assert (
        f"{f}:15:23: providers.fallback.openai-realtime[0]: unknown target id 'openai-realtme'"
        " (did you mean 'openai-realtime'?)"
    ) in lines
    assert f"{f}:29:17: policy.audit-logger.durability: 'eventual' is not one of: batch, strict" in lines
    # Sorted by position, so the output reads top to bottom like the file.
    positions = [(i.line, i.col) for i in info.value.issues]
    assert positions == sorted(positions)


def test_toml_errors_have_best_effort_positions() -> None:
    path = BAD / "bad-types.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    f = str(path)
    assert str(info.value).splitlines() == [
        f"{f}:3:11: pack.version: expected a string, got an integer (put it in quotes)",
        f"{f}:8:1: providers.targets[0].modle: unknown key 'modle' (did you mean 'model'?)",
        f"{f}:9:26: providers.targets[0].secret_key_ref.env: expected a string, got an integer (put it in quotes)",
        f"{f}:12:20: features.websocket.channel_capacity: must be greater than 0",
    ]


def test_yaml_syntax_error_has_the_parser_position() -> None:
    assert errors_of("pack:\n  name: [x\n  version: 1\n") == [
        "c.yaml:3:10: <document>: YAML syntax error: expected ',' or ']', but got ':' (while parsing a flow sequence)"
    ]


def test_toml_syntax_error_has_the_parser_position() -> None:
    assert errors_of('[pack]\nname = "x\n', fmt="toml") == [
        "c.toml:2:10: <document>: TOML syntax error: Illegal character '\\n'"
    ]


def test_duplicate_yaml_key_does_not_echo_values() -> None:
    (line,) = errors_of("pack:\n  name: a\n  name: hunter2\n")
    assert "hunter2" not in line
    assert line.startswith("c.yaml:3:3: <document>: YAML syntax error: found duplicate key")


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("/nonexistent/kt.yaml")
    assert (
        str(info.value)
        == "/nonexistent/kt.yaml:1:1: <document>: cannot read the config file: No such file or directory"
    )


def test_top_level_must_be_a_mapping() -> None:
    assert errors_of("- 1\n") == ["c.yaml:1:1: <document>: the top level must be a mapping, got a list"]


# --- environment ----------------------------------------------------------------------------


def test_env_expansion() -> None:
    text = MINIMAL + "      base_url: ${UPSTREAM:-wss://fallback.example/v1/realtime}\n"
    text += "pack:\n  name: ${PACK_NAME}\n"
    config = load_config_text(text, "c.yaml", environ={"PACK_NAME": "from-env"})
    assert config.pack.name == "from-env"
    assert config.providers.targets[0].base_url == "wss://fallback.example/v1/realtime"
    config = load_config_text(text, "c.yaml", environ={"PACK_NAME": "p", "UPSTREAM": "ws://127.0.0.1:1/x"})
    assert config.providers.targets[0].base_url == "ws://127.0.0.1:1/x"


def test_unset_env_var_is_an_error_naming_it() -> None:
    text = MINIMAL + "      base_url: wss://${HOST}/v1/realtime\n"
    assert errors_of(text) == ["c.yaml:6:17: providers.targets[0].base_url: environment variable HOST is not set"]


def test_env_value_is_not_echoed_in_enum_errors() -> None:
    text = MINIMAL.replace("provider: openai", "provider: ${PROVIDER}")
    (line,) = errors_of(text, environ={"PROVIDER": "s3cret-value"})
    assert "s3cret-value" not in line
    assert line.startswith("c.yaml:4:17: providers.targets[0].provider: expected one of: openai, azure-openai")


def test_resolve_secrets() -> None:
    config = load_config(CONFIGS / "developer-experience-providers-1.yaml", environ={})
    env = {"OPENAI_API_KEY": "sk-1", "ANTHROPIC_API_KEY": "sk-2", "AZURE_OPENAI_KEY": "sk-3"}
    assert resolve_secrets(config, env) == {"openai-gpt4o": "sk-1", "anthropic-sonnet": "sk-2", "azure-gpt4o": "sk-3"}


def test_unset_secret_names_the_variable_never_a_value() -> None:
    path = CONFIGS / "developer-experience-providers-1.yaml"
    config = load_config(path, environ={})
    env = {"OPENAI_API_KEY": "sk-very-secret", "AZURE_OPENAI_KEY": ""}
    with pytest.raises(ConfigError) as info:
        resolve_secrets(config, env)
    assert str(info.value).splitlines() == [
        f"{path}:17:9: providers.targets[1].secret_key_ref.env: environment variable ANTHROPIC_API_KEY is not set"
        " (the secret of target 'anthropic-sonnet')",
        f"{path}:23:9: providers.targets[2].secret_key_ref.env: environment variable AZURE_OPENAI_KEY is not set"
        " (the secret of target 'azure-gpt4o')",
    ]
    assert "sk-very-secret" not in str(info.value)
    assert "sk-very-secret" not in repr(info.value)


# --- helpers the session uses ---------------------------------------------------------------


def test_effective_transport_and_serves_websocket() -> None:
    ws = Target(id="a", provider="openai", model="m", base_url="wss://x/v1/realtime")
    http = Target(id="b", provider="openai", model="m", base_url="https://x/v1")
    bare = Target(id="c", provider="openai", model="m")
    anthropic = Target(id="d", provider="anthropic", model="claude")
    assert (ws.effective_transport, ws.serves_websocket) == ("websocket", True)
    assert (http.effective_transport, http.serves_websocket) == ("http", False)
    assert (bare.effective_transport, bare.serves_websocket) == ("http", True)
    assert (anthropic.effective_transport, anthropic.serves_websocket) == ("http", False)


def test_websocket_url() -> None:
    bare = Target(id="c", provider="openai", model="m")
    assert bare.websocket_url("/v1/realtime") == "wss://api.openai.com/v1/realtime"
    assert bare.websocket_url("/v1/responses") == "wss://api.openai.com/v1/responses"
    assert bare.http_base_url == "https://api.openai.com/v1"
    written = Target(id="r", provider="openai", model="m", base_url="wss://api.openai.com/v1/responses")
    # As written, whatever route the client used.
    assert written.websocket_url("/v1/realtime") == "wss://api.openai.com/v1/responses"


def test_find_websocket_target_routing_rule() -> None:
    config = load_config(CONFIGS / "developer-experience-providers-1.yaml", environ={})
    # openai-gpt4o has no base_url so it serves WebSocket; azure is https (http) and anthropic is http.
    assert config.find_websocket_target(None).id == "openai-gpt4o"  # type: ignore[union-attr]
    assert config.find_websocket_target("gpt-4o").id == "openai-gpt4o"  # type: ignore[union-attr]
    assert config.find_websocket_target("openai-gpt4o").id == "openai-gpt4o"  # type: ignore[union-attr]
    assert config.find_websocket_target("azure-gpt4o") is None
    assert config.find_websocket_target("claude-sonnet-4-20250514") is None
    assert config.find_websocket_target("nope") is None


def test_model_match_wins_over_id_match() -> None:
    text = """\
providers:
  targets:
    - id: gpt-4o-realtime-preview
      provider: openai
      model: other-model
      base_url: wss://a.example/v1/realtime
    - id: second
      provider: openai
      model: gpt-4o-realtime-preview
      base_url: wss://b.example/v1/realtime
"""
    config = load_config_text(text, "c.yaml")
    assert config.find_websocket_target("gpt-4o-realtime-preview").id == "second"  # type: ignore[union-attr]
    assert config.find_websocket_target(None).id == "gpt-4o-realtime-preview"  # type: ignore[union-attr]


def test_candidate_targets_same_model_then_fallback() -> None:
    text = """\
providers:
  targets:
    - {id: a, provider: openai, model: m1, base_url: "wss://a/v1/realtime"}
    - {id: b, provider: openai, model: m2, base_url: "wss://b/v1/realtime"}
    - {id: c, provider: openai, model: m1, base_url: "wss://c/v1/realtime"}
  fallback:
    a: [b]
"""
    config = load_config_text(text, "c.yaml")
    primary = config.find_websocket_target("m1")
    assert primary is not None
    assert [t.id for t in config.candidate_targets(primary)] == ["a", "c", "b"]


def test_session_settings_merges_target_overrides() -> None:
    text = MINIMAL + (
        "      ping_interval_secs: 5\n"
        "      idle_timeout_secs: 20\n"
        "gateway:\n"
        "  websocket:\n"
        "    idle_timeout_seconds: 100\n"
        "    max_message_size_bytes: 2048\n"
    )
    config = load_config_text(text, "c.yaml")
    assert config.session_settings(config.providers.targets[0]) == SessionSettings(
        ping_interval_secs=5.0,
        pong_timeout_secs=60.0,
        max_message_size_bytes=2048,
        max_upstream_message_size_bytes=16_777_216,
        idle_timeout_secs=20.0,
        max_session_secs=3600.0,
        connect_timeout_secs=10.0,
    )


def test_summarize() -> None:
    config = load_config(CONFIGS / "realtime-gateway.yaml", environ={})
    assert summarize(config) == (
        "ok: pack realtime-gateway 0.1.0: 1 target (openai-realtime), "
        "chain prompt-injection > pii-detector > safety-filter > audit-logger, event stream on"
    )


def test_config_is_frozen() -> None:
    config = load_config_text(MINIMAL, "c.yaml")
    with pytest.raises(AttributeError):
        config.pack = None  # type: ignore[misc]


def test_an_unquoted_yaml_date_is_the_string_it_reads_as() -> None:
    text = (
        "providers:\n  targets:\n    - id: az\n      provider: azure-openai\n      model: gpt-4o\n"
        "      base_url: https://example.openai.azure.com\n      api_version: 2024-10-21\n"
    )
    assert load_config_text(text).providers.targets[0].api_version == "2024-10-21"
    with pytest.raises(ConfigError, match="put it in quotes"):
        load_config_text(text.replace("2024-10-21", "2024-10-21T10:00:00"))
