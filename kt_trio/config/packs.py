"""Several policy packs in one gateway (issue 7): `--config` repeated, or a directory of files.

Each file is one pack (`pack.name`), with its own targets, rate limits, breaker settings, policy
chain and policy settings. The first enabled pack is the default one: it serves anonymous
clients and keys bound to no pack, and it alone holds the settings of the gateway as a whole
(`gateway.*`, `features.*`, `providers.rate_limit.per_ip`): one port, one state directory, one
event stream. `gateway_wide_differences` names what a later pack sets differently there, so the
gateway can warn that those values are not used.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from kt_trio.config.errors import ConfigError, ConfigIssue
from kt_trio.config.loader import load_config
from kt_trio.config.schema import ConfigOrigin, GatewayConfig

CONFIG_SUFFIXES = (".yaml", ".yml", ".toml")


def config_files(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The files named, with each directory replaced by its config files in name order
    (so `00-default.yaml` comes first); a directory with none is an error."""
    files: list[str] = []
    for path in paths:
        p = Path(path)
        if not p.is_dir():
            files.append(os.fspath(path))
            continue
        found = sorted(str(c) for c in p.iterdir() if c.is_file() and c.suffix.lower() in CONFIG_SUFFIXES)
        if not found:
            message = f"no config files ({', '.join(CONFIG_SUFFIXES)}) in this directory"
            raise ConfigError([ConfigIssue(os.fspath(path), 1, 1, "", message)])
        files.extend(found)
    return files


def load_packs(
    paths: Iterable[str | os.PathLike[str]], environ: Mapping[str, str] | None = None
) -> list[GatewayConfig]:
    """Every enabled pack of these files or directories, the default one first.

    All files are read before anything is raised, so one `ConfigError` lists every problem in
    every file. Two packs with the same `pack.name` are an error (a key names its pack by name).
    """
    issues: list[ConfigIssue] = []
    loaded: list[GatewayConfig] = []
    for file in config_files(paths):
        try:
            loaded.append(load_config(file, environ))
        except ConfigError as exc:
            issues.extend(exc.issues)
    named: dict[str, GatewayConfig] = {}
    for config in loaded:
        first = named.get(config.pack.name)
        if first is None:
            named[config.pack.name] = config
            continue
        where = _origin(config)
        line, col = where.position("pack.name")
        message = f"pack name {config.pack.name!r} is already used by {_origin(first).file}"
        issues.append(ConfigIssue(where.file, line, col, "pack.name", message))
    if issues:
        raise ConfigError(issues)
    enabled = [c for c in loaded if c.pack.enabled]
    if not enabled:
        where = _origin(loaded[0])
        line, col = where.position("pack.enabled")
        raise ConfigError([ConfigIssue(where.file, line, col, "pack.enabled", "every pack is disabled")])
    return enabled


def gateway_wide_differences(default: GatewayConfig, other: GatewayConfig) -> list[str]:
    """The gateway-wide sections `other` sets differently from the default pack (ignored there)."""
    differences = []
    if default.gateway != other.gateway:
        differences.append("gateway")
    if default.features != other.features:
        differences.append("features")
    if default.providers.rate_limit.per_ip != other.providers.rate_limit.per_ip:
        differences.append("providers.rate_limit.per_ip")
    if default.store != other.store:
        differences.append("store")
    if other.teams and default.teams != other.teams:
        differences.append("teams")
    if default.observability != other.observability:
        differences.append("observability")
    return differences


def with_gateway_settings_of(default: GatewayConfig, other: GatewayConfig) -> GatewayConfig:
    """`other` with the default pack's gateway-wide settings, so no part of the gateway reads a
    pack's own (unused) copy of them."""
    rate_limit = attrs.evolve(other.providers.rate_limit, per_ip=default.providers.rate_limit.per_ip)
    return attrs.evolve(
        other,
        gateway=default.gateway,
        features=default.features,
        store=default.store,
        observability=default.observability,
        providers=attrs.evolve(other.providers, rate_limit=rate_limit),
    )


def _origin(config: GatewayConfig) -> ConfigOrigin:
    return config.origin or ConfigOrigin(file=f"<pack {config.pack.name}>")
