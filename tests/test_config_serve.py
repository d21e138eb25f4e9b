"""`validate` <=> `serve` (issue 13): what `validate` accepts, `serve` starts and serves; what
`serve` would die on at start or at the first session, `validate` refuses, as
`FILE:LINE:COL: dotted.path: message`, never quoting a secret. And the documentation's
examples validate as written (a target without `model`, routed to by its id)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from ruamel.yaml import YAML
from trio_websocket import open_websocket_url

from kt_trio.config import ConfigError, GatewayConfig, load_config, load_config_text, resolve_secrets
from kt_trio.config.schema import POLICY_SETTINGS, Target
from kt_trio.mocks.http import HttpMockBehaviour, open_mock_http_upstream
from kt_trio.mocks.realtime import open_mock_upstream
from kt_trio.server.gateway import Gateway
from kt_trio.testing import serve_gateway
from tests.chat_fixtures import in_thread, openai_client

HEALTH_MONITORING = Path(__file__).parent / "data" / "configs" / "docs" / "health-monitoring.yaml"
ISSUE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<path>[\w.\[\]-]+): (?P<message>.+)$")
SECRET = "sk-do-not-print-me"

TARGET = "providers:\n  targets:\n    - id: t\n      provider: openai\n"


def _target(**fields: str) -> str:
    return TARGET + "".join(f"      {key}: {value}\n" for key, value in fields.items())


# (case id, config text, environment, dotted path of the error, a fragment of its message)
REFUSED: list[tuple[str, str, dict[str, str], str, str]] = [
    ("ws-port-99999", _target(base_url="ws://127.0.0.1:99999/v1/realtime"), {}, "base_url", "port"),
    ("ws-port-abc", _target(base_url="wss://example.com:abc/v1/realtime"), {}, "base_url", "port"),
    ("ws-port-0", _target(base_url="ws://127.0.0.1:0/v1/realtime"), {}, "base_url", "port"),
    ("non-ascii-path", _target(base_url="wss://example.com/v1/r\u00e9altime"), {}, "base_url", "non-ASCII"),
    ("crlf", _target(base_url='"wss://example.com/v1\\r\\nX-Evil: 1"'), {}, "base_url", "line break"),
    ("control-char", _target(base_url='"wss://example.com/v1/\\x01"'), {}, "base_url", "control character"),
    ("space", _target(base_url='"wss://example.com/v1/a b"'), {}, "base_url", "space"),
    ("bad-ipv6", _target(base_url='"wss://[::1/v1"'), {}, "base_url", "host"),
    ("empty-label", _target(base_url="wss://a..b/v1"), {}, "base_url", "host name"),
    ("long-label", _target(base_url=f"wss://{'a' * 64}.com/v1"), {}, "base_url", "host name"),
    ("credentials", _target(base_url="wss://user:pw@example.com/v1"), {}, "base_url", "credentials"),
    ("url-from-env", _target(base_url="${UPSTREAM_URL}"), {"UPSTREAM_URL": "ws://h:70000/x"}, "base_url", "port"),
    ("api-version-crlf", _target(api_version='"2024\\r\\n"'), {}, "api_version", "line break"),
    (
        "anthropic-websocket",
        TARGET.replace("openai", "anthropic") + "      transport: websocket\n",
        {},
        "transport",
        "no public WebSocket",
    ),
    (
        "secret-newline",
        _target(secret_key_ref="{env: KT_TEST_SECRET}"),
        {"KT_TEST_SECRET": SECRET + "\n"},
        "secret_key_ref.env",
        "trailing newline",
    ),
    (
        "secret-non-ascii",
        _target(secret_key_ref="{env: KT_TEST_SECRET}"),
        {"KT_TEST_SECRET": SECRET + "\u00e9"},
        "secret_key_ref.env",
        "non-ASCII",
    ),
    ("ping-1ms", _target(ping_interval_secs="0.001"), {}, "ping_interval_secs", "at least 1"),
    (
        "message-1tib",
        "gateway:\n  websocket:\n    max_message_size_bytes: 1099511627776\n",
        {},
        "max_message_size_bytes",
        "at most 268435456",
    ),
    (
        "upstream-message-1tib",
        _target(max_upstream_message_size_bytes="1099511627776"),
        {},
        "max_upstream_message_size_bytes",
        "at most",
    ),
    (
        "flush-1h",
        "policy:\n  audit-logger:\n    flush_interval_ms: 3600000\n",
        {},
        "flush_interval_ms",
        "at most 10000",
    ),
    (
        "retention-million-days",
        "policy:\n  audit-logger:\n    retention_days: 1000000\n",
        {},
        "retention_days",
        "at most 36525",
    ),
    ("idle-nan", "gateway:\n  websocket:\n    idle_timeout_seconds: .nan\n", {}, "idle_timeout_seconds", "finite"),
    ("session-inf", _target(max_session_secs=".inf"), {}, "max_session_secs", "finite"),
    ("events-ping", "features:\n  websocket:\n    ping_interval_secs: 0.01\n", {}, "ping_interval_secs", "at least 1"),
    ("channel-huge", "features:\n  websocket:\n    channel_capacity: 1000000000\n", {}, "channel_capacity", "at most"),
    (
        "breaker-huge",
        "providers:\n  circuit_breaker:\n    recovery_timeout_secs: 1e12\n",
        {},
        "recovery_timeout_secs",
        "at most",
    ),
    ("shutdown-negative", "gateway:\n  shutdown_timeout_secs: -1\n", {}, "shutdown_timeout_secs", "greater than 0"),
]


@pytest.mark.parametrize(
    ("text", "environ", "where", "fragment"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_validate_refuses_what_serve_cannot_run(text: str, environ: dict[str, str], where: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "c.yaml", "yaml", environ)
    lines = str(info.value).splitlines()
    assert len(lines) == 1, lines
    match = ISSUE.match(lines[0])
    assert match is not None, lines[0]
    assert match["file"] == "c.yaml" and int(match["line"]) > 0 and int(match["col"]) > 0
    assert match["path"].endswith(where), lines[0]
    assert fragment in match["message"], lines[0]
    assert SECRET not in lines[0] and "example.com" not in lines[0] and "Evil" not in lines[0]


def test_validate_command_refuses_every_case(tmp_path: Path) -> None:
    """The same through `python -m kt_trio validate` as a user runs it: exit 2, one
    `FILE:LINE:COL` line per file, no traceback, no secret."""
    files = []
    env = {"PATH": "/usr/bin:/bin", "KT_TEST_SECRET": SECRET + "\n", "UPSTREAM_URL": "ws://h:70000/x"}
    for index, (case, text, _environ, _where, _fragment) in enumerate(REFUSED):
        if "secret-non-ascii" == case:
            continue  # one secret in the environment at a time
        path = tmp_path / f"{index:02d}-{case}.yaml"
        path.write_text(f"pack:\n  name: p{index}\n" + text, encoding="utf-8")
        files.append(path)
    done = subprocess.run(
        [sys.executable, "-m", "kt_trio", "validate", *map(str, files)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr and SECRET not in done.stderr
    reported = {ISSUE.match(line)["file"] for line in done.stderr.splitlines() if ISSUE.match(line)}  # type: ignore[index]
    assert reported == {str(f) for f in files}


def test_serve_checks_secrets_from_its_own_environment(tmp_path: Path) -> None:
    """`validate` ran without the secret; `serve` gets it with a trailing newline: exit 2 at
    start with the variable named and the value never printed (no traceback)."""
    config = tmp_path / "c.yaml"
    config.write_text(
        f"gateway:\n  state_dir: {tmp_path / 'state'}\n" + _target(secret_key_ref="{env: KT_TEST_SECRET}"),
        encoding="utf-8",
    )
    clean = {"PATH": "/usr/bin:/bin"}
    ok = subprocess.run(
        [sys.executable, "-m", "kt_trio", "validate", str(config)], capture_output=True, text=True, env=clean
    )
    assert ok.returncode == 0, ok.stderr
    for bad in (SECRET + "\n", SECRET + "\u00e9", "\t" + SECRET):
        done = subprocess.run(
            [sys.executable, "-m", "kt_trio", "serve", "--config", str(config), "--port", "0"],
            capture_output=True,
            text=True,
            env={**clean, "KT_TEST_SECRET": bad},
            timeout=60,
        )
        assert done.returncode == 2
        (line,) = done.stderr.strip().splitlines()
        match = ISSUE.match(line)
        assert match is not None and match["path"] == "providers.targets[0].secret_key_ref.env", line
        assert "KT_TEST_SECRET" in line and "'t'" in line
        assert SECRET not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_resolve_secrets_refuses_values_that_cannot_be_a_header() -> None:
    config = load_config_text(_target(secret_key_ref="{env: S}"), "c.yaml", "yaml", {})
    assert resolve_secrets(config, {"S": SECRET}) == {"t": SECRET}
    for bad in (SECRET + "\r\n", SECRET + "\x00", f"{SECRET} ", "\u00fc" + SECRET):
        with pytest.raises(ConfigError) as info:
            resolve_secrets(config, {"S": bad})
        assert SECRET not in str(info.value) and "S (the secret of target 't')" in str(info.value)


# --- bounds on every number ------------------------------------------------------------------------


def _numeric_fields() -> list[tuple[str, dict[str, Any], list[str]]]:
    """(dotted path, config data setting that field to a placeholder, path into the data) for every
    int or float field of the schema, found by walking it (so a field added later is covered)."""
    found: list[tuple[str, dict[str, Any], list[str]]] = []

    def walk(cls: type, prefix: list[str], wrap: Any) -> None:
        hints = typing.get_type_hints(cls)
        for fld in attrs.fields(cls):
            if fld.name == "origin":
                continue
            tp = hints[fld.name]
            is_union = typing.get_origin(tp) in (typing.Union, types.UnionType)
            inner = next(a for a in typing.get_args(tp) if a is not type(None)) if is_union else tp
            if cls is GatewayConfig and fld.name == "policy":
                for name, settings in POLICY_SETTINGS.items():
                    walk(settings, ["policy", name], lambda d, n=name: {"policy": {n: d}})
                continue
            if attrs.has(inner):
                walk(inner, [*prefix, fld.name], lambda d, w=wrap, n=fld.name: w({n: d}))
            elif typing.get_origin(inner) is tuple and attrs.has(typing.get_args(inner)[0]):
                item = typing.get_args(inner)[0]
                if item is Target:
                    base = {"id": "t", "provider": "openai"}
                    walk(item, [*prefix, fld.name, "0"], lambda d, w=wrap, n=fld.name, b=base: w({n: [{**b, **d}]}))
            elif inner in (int, float) or (
                typing.get_origin(inner) is tuple and typing.get_args(inner)[0] in (int, float)
            ):
                is_list = typing.get_origin(inner) is tuple
                found.append((".".join([*prefix, fld.name]), wrap, [fld.name, str(is_list)]))

    walk(GatewayConfig, [], lambda d: d)
    return [(path, wrap, meta) for path, wrap, meta in found]


NUMERIC_FIELDS = _numeric_fields()


@pytest.mark.parametrize(("path", "wrap", "meta"), NUMERIC_FIELDS, ids=[f[0] for f in NUMERIC_FIELDS])
def test_every_number_has_a_ceiling(path: str, wrap: Any, meta: list[str]) -> None:
    name, is_list = meta[0], meta[1] == "True"
    huge: Any = 10**16
    data = wrap({name: [huge] if is_list else huge})
    with pytest.raises(ConfigError) as info:
        load_config_text(json.dumps(data), "c.yaml", "yaml", {})
    (issue,) = info.value.issues
    assert issue.path.replace("[0]", "") == path.replace(".0.", ".")
    assert "must be at most" in issue.message or "between 0 and 1" in issue.message, str(issue)


def test_numbers_at_their_bounds_are_valid() -> None:
    text = (
        "gateway:\n  websocket:\n    ping_interval_secs: 1\n    max_message_size_bytes: 268435456\n"
        "policy:\n  audit-logger:\n    flush_interval_ms: 10000\n    retention_days: 36525\n"
    )
    config = load_config_text(text, "c.yaml", "yaml", {})
    assert config.gateway.websocket.max_message_size_bytes == 256 * 1024 * 1024


# --- the documentation's examples, and targets without a model -----------------------------------


def test_health_monitoring_example_validates_as_written() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kt_trio", "validate", str(HEALTH_MONITORING)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "2 targets (openai-primary, openai-secondary)" in done.stdout
    config = load_config(HEALTH_MONITORING, environ={})
    assert [t.model for t in config.providers.targets] == [None, None]
    primary, secondary = config.providers.targets
    # Routed to by id, or as the first WebSocket target; no "same model" peers among model-less targets.
    assert config.find_websocket_target("openai-secondary") is secondary
    assert config.find_websocket_target(None) is primary
    assert config.candidate_targets(primary) == (primary, secondary)
    assert config.candidate_targets(secondary) == (secondary,)


def _without_model(ws_url: str, http_url: str) -> str:
    yaml = YAML()
    data = yaml.load(HEALTH_MONITORING.read_text())
    data["providers"]["targets"][0]["base_url"] = f"{ws_url}/v1/realtime"
    data["providers"]["targets"][1]["base_url"] = f"{http_url}/v1"
    data["providers"]["targets"][1]["transport"] = "http"
    del data["providers"]["fallback"]
    from io import StringIO

    out = StringIO()
    yaml.dump(data, out)
    return out.getvalue()


async def test_targets_without_model_serve_sessions_and_chat(tmp_path: Path) -> None:

    with trio.fail_after(30):
        async with open_mock_upstream() as ws_mock, open_mock_http_upstream(HttpMockBehaviour()) as http_mock:
            text = _without_model(ws_mock.url, http_mock.url) + f"gateway:\n  state_dir: {tmp_path}\n"
            config = load_config_text(text, "health.yaml", "yaml", {})
            secrets = resolve_secrets(config, {"OPENAI_API_KEY": "sk-a", "OPENAI_API_KEY_SECONDARY": "sk-b"})
            async with serve_gateway(Gateway(config, secrets=secrets)) as gw:
                for query in ({"model": "openai-primary"}, {}):
                    async with open_websocket_url(gw.ws_url(**query)) as ws:
                        assert json.loads(await ws.get_message())["type"] == "session.created"
                        await ws.send_message(json.dumps({"type": "response.create"}))
                        while json.loads(await ws.get_message())["type"] != "response.done":
                            pass
                client = openai_client(gw.base_url, "sk-anything")
                answer = await in_thread(
                    lambda: client.chat.completions.create(
                        model="openai-secondary", messages=[{"role": "user", "content": "hi"}]
                    )
                )
                assert answer.choices[0].message.content
        assert len(ws_mock.connections) == 2
        (request,) = http_mock.requests
        assert request.body["model"] == "openai-secondary"  # the client's model, as sent
