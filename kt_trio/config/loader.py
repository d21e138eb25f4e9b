"""Load a config file into a `GatewayConfig`, or raise `ConfigError` with every problem in it.

Validation (with positions) happens once here, at the edge; cattrs then builds the frozen
classes from data already known to be valid, so the rest of the gateway never re-checks it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs

from kt_trio.config.errors import ConfigError, ConfigIssue
from kt_trio.config.schema import (
    DEFAULT_CHAIN,
    POLICY_SETTINGS,
    ConfigOrigin,
    GatewayConfig,
    Pack,
    Policies,
    PolicySettings,
    Providers,
    Target,
)
from kt_trio.config.source import Document, parse_toml, parse_yaml
from kt_trio.config.validate import Validator
from kt_trio.config.value_checks import secret_message, secret_problem

Format = Literal["yaml", "toml"]

_converter = cattrs.Converter()
# `policy:` holds a different settings class per key, which no generic union rule can pick.
_converter.register_structure_hook_func(
    lambda tp: tp == Mapping[str, PolicySettings],
    lambda data, _: {name: _converter.structure(value, POLICY_SETTINGS[name]) for name, value in data.items()},
)


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read, validate and build the config at `path` (`.toml` is TOML, anything else YAML)."""
    file = os.fspath(path)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([ConfigIssue(file, 1, 1, "", f"cannot read the config file: {reason}")]) from None
    fmt: Format = "toml" if file.lower().endswith(".toml") else "yaml"
    return load_config_text(text, file, fmt, environ)


def load_config_text(
    text: str, filename: str = "<config>", fmt: Format = "yaml", environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Like `load_config`, for text already in memory (`filename` is only used in messages)."""
    doc = parse_toml(text, filename) if fmt == "toml" else parse_yaml(text, filename)
    if doc.issues:
        raise ConfigError(doc.issues)
    data = Validator(doc, os.environ if environ is None else environ).validate()
    if doc.issues:
        raise ConfigError(sorted(doc.issues, key=lambda issue: (issue.line, issue.col)))
    config = _converter.structure(data, GatewayConfig)
    return attrs.evolve(config, origin=_origin(doc))


def _origin(doc: Document) -> ConfigOrigin:
    return ConfigOrigin(file=doc.file, positions=dict(doc.keys))


def default_config(targets: Iterable[Target] = (), chain: Iterable[str] = DEFAULT_CHAIN) -> GatewayConfig:
    """A valid config built in code (demo mode): the given targets and the default policy chain."""
    return GatewayConfig(
        pack=Pack(name="kt_trio-demo", version="0.1.0"),
        providers=Providers(targets=tuple(targets)),
        policies=Policies(chain=tuple(chain)),
    )


def resolve_secrets(config: GatewayConfig, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Target id -> secret, read from each target's `secret_key_ref.env`.

    An unset (or empty) variable is an error that names the variable and the target, and so is
    a value that cannot go into an HTTP header (a trailing newline, a control character,
    non-ASCII): checked here, at start, because the environment `serve` runs in may not be the
    one `validate` saw. No message ever includes a secret's value.
    """
    env = os.environ if environ is None else environ
    origin = config.origin or ConfigOrigin(file="<config>")
    secrets: dict[str, str] = {}
    issues: list[ConfigIssue] = []
    for index, target in enumerate(config.providers.targets):
        if target.secret_key_ref is None:
            continue
        name = target.secret_key_ref.env
        value = env.get(name)
        problem = secret_problem(value) if value else None
        if value and problem is None:
            secrets[target.id] = value
            continue
        path = f"providers.targets[{index}].secret_key_ref.env"
        line, col = origin.position(path)
        if problem is not None:
            message = secret_message(name, target.id, problem)
        else:
            message = f"environment variable {name} is not set (the secret of target '{target.id}')"
        issues.append(ConfigIssue(origin.file, line, col, path, message))
    if issues:
        raise ConfigError(issues)
    return secrets


def summarize(config: GatewayConfig) -> str:
    """The one line `kt_trio validate` prints for a good file."""
    targets = config.providers.targets
    noun = "target" if len(targets) == 1 else "targets"
    ids = f" ({', '.join(t.id for t in targets)})" if targets else ""
    chain = " > ".join(config.policies.chain) or "(empty)"
    events = "on" if config.features.websocket.enabled else "off"
    parts: list[Any] = [
        f"{len(targets)} {noun}{ids}",
        f"chain {chain}",
        f"event stream {events}",
    ]
    return f"ok: pack {config.pack.name} {config.pack.version}: " + ", ".join(parts)
