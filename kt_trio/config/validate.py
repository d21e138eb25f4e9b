"""Check parsed config data against the schema, collecting every problem with its position.

The walker follows the attrs fields of `kt_trio.config.schema` (types from resolved type hints),
so the schema is the single statement of what a file may contain. It is strict where a silent
coercion would hide a mistake: "12" is not an int, `true` is not a number, an unknown key is an
error. It returns the same data as plain dicts and lists, with `${ENV}` expanded and ints widened
to floats where a float is expected, ready for cattrs to structure once no issue was found.

A bad value is reported and left out, but its siblings are still checked (and the cross-field
rules still run on what is left), so one run reports every problem in the file. The rules for
single values (URLs, networks, bounds, secrets) are in `kt_trio.config.value_checks`.
"""

from __future__ import annotations

import datetime
import difflib
import math
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union
from urllib.parse import urlsplit

import attrs

from kt_trio.config.schema import POLICY_SETTINGS, GatewayConfig
from kt_trio.config.source import Document, child_path
from kt_trio.config.value_checks import CHECKS, bounds_problem, secret_message, secret_problem

_INVALID: Any = object()  # a value that failed its check; dropped from the output
_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def did_you_mean(word: str, candidates: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _expected(tp: Any) -> str:
    if tp is bool:
        return "a boolean"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    origin = typing.get_origin(tp)
    if origin is tuple:
        return "a list"
    if origin in (Mapping, dict) or attrs.has(tp):
        return "a mapping"
    return str(tp)


class Validator:
    def __init__(self, doc: Document, environ: Mapping[str, str]) -> None:
        self.doc = doc
        self.environ = environ
        # Paths whose string came from the environment: their values are never echoed in a message.
        self._from_env: set[str] = set()

    def error(self, path: str, message: str, *, at_key: bool = False) -> None:
        pos = self.doc.key_pos(path) if at_key else self.doc.value_pos(path)
        self.doc.issue(path, pos, message)

    # --- entry point ---------------------------------------------------------------------------

    def validate(self) -> dict[str, Any]:
        data = {} if self.doc.data is None else self.doc.data  # an empty file is all defaults
        if not isinstance(data, dict):
            self.error("", f"the top level must be a mapping, got {_describe(data)}")
            return {}
        out: dict[str, Any] = self.check_class(data, GatewayConfig, "")
        self.cross_checks(out, data)
        return out

    # --- by type -------------------------------------------------------------------------------

    def check(
        self, value: Any, tp: Any, path: str, check: str | None = None, bounds: tuple[Any, Any] = (None, None)
    ) -> Any:
        if isinstance(value, str) and "${" in value:
            value = self.expand(value, path)
            if value is _INVALID:
                return _INVALID
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            (inner,) = [a for a in args if a is not type(None)]
            return self.check(value, inner, path, check, bounds)
        if origin is Literal:
            return self.check_literal(value, args, path)
        if attrs.has(tp):
            if not isinstance(value, dict):
                self.error(path, f"expected a mapping, got {_describe(value)}")
                return _INVALID
            return self.check_class(value, tp, path)
        if origin is tuple:
            return self.check_list(value, args[0], path, check, bounds)
        if origin in (Mapping, dict):
            return self.check_mapping(value, args[1], path)
        out = self.check_scalar(value, tp, path)
        if out is not _INVALID and check is not None:
            problem = CHECKS[check](out)
            if problem is not None:
                self.error(path, problem)
                return _INVALID
        if out is not _INVALID and tp in (int, float):
            problem = bounds_problem(out, *bounds)
            if problem is not None:
                self.error(path, problem)
                return _INVALID
        return out

    def check_scalar(self, value: Any, tp: type, path: str) -> Any:
        if tp is str and type(value) is datetime.date:
            # `api_version: 2024-10-21` unquoted is a YAML date; its ISO form is exactly what was
            # written, so take it as the string the user meant (a timestamp is not: quote it).
            return value.isoformat()
        ok = (
            (tp is bool and isinstance(value, bool))
            or (tp is int and isinstance(value, int) and not isinstance(value, bool))
            # An int is a fine float ("ping_interval_secs: 30"); a bool is never a number.
            or (tp is float and isinstance(value, (int, float)) and not isinstance(value, bool))
            or (tp is str and isinstance(value, str))
        )
        if not ok:
            # `version: 1.0` is a YAML number; the fix is quotes, so say so.
            quote = " (put it in quotes)" if tp is str and isinstance(value, (int, float, datetime.date)) else ""
            self.error(path, f"expected {_expected(tp)}, got {_describe(value)}{quote}")
            return _INVALID
        if tp is float and not math.isfinite(value):
            self.error(path, "must be a finite number")
            return _INVALID
        return float(value) if tp is float else value

    def check_literal(self, value: Any, allowed: tuple[str, ...], path: str) -> Any:
        if isinstance(value, str) and value in allowed:
            return value
        choices = ", ".join(allowed)
        if isinstance(value, str) and path not in self._from_env:
            hint = did_you_mean(value, allowed)
            self.error(path, f"'{value}' is not one of: {choices}{hint}")
        else:
            self.error(path, f"expected one of: {choices}; got {_describe(value)}")
        return _INVALID

    def check_list(
        self, value: Any, item_tp: Any, path: str, check: str | None, bounds: tuple[Any, Any] = (None, None)
    ) -> Any:
        if not isinstance(value, list):
            self.error(path, f"expected a list, got {_describe(value)}")
            return _INVALID
        # Bad items stay as _INVALID placeholders so later items keep their index in messages.
        return [self.check(item, item_tp, child_path(path, i), check, bounds) for i, item in enumerate(value)]

    def check_mapping(self, value: Any, value_tp: Any, path: str) -> Any:
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {_describe(value)}")
            return _INVALID
        out = {key: self.check(item, value_tp, child_path(path, key)) for key, item in value.items()}
        return {key: item for key, item in out.items() if item is not _INVALID}

    def check_class(self, value: dict[str, Any], cls: type, path: str) -> Any:
        fields = {f.name: f for f in attrs.fields(cls) if f.name != "origin"}
        hints = typing.get_type_hints(cls)
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = child_path(path, key)
            if key not in fields:
                hint = did_you_mean(key, fields) or f" (known keys: {', '.join(fields)})"
                self.error(sub, f"unknown key '{key}'{hint}", at_key=True)
                continue
            if cls is GatewayConfig and key == "policy":
                checked = self.check_policy_map(item, sub)
            else:
                meta = fields[key].metadata
                bounds = (meta.get("min"), meta.get("max"))
                checked = self.check(item, hints[key], sub, meta.get("check"), bounds)
            if checked is not _INVALID:
                out[key] = checked
        for name, fld in fields.items():
            if fld.default is attrs.NOTHING and name not in value:
                # Reported where the mapping that lacks it starts.
                self.doc.issue(child_path(path, name), self.doc.value_pos(path), "missing required key")
        return out

    def check_policy_map(self, value: Any, path: str) -> Any:
        """`policy:` maps a policy name to that policy's own settings class."""
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {_describe(value)}")
            return _INVALID
        out: dict[str, Any] = {}
        for name, settings in value.items():
            sub = child_path(path, name)
            if name not in POLICY_SETTINGS:
                hint = did_you_mean(name, POLICY_SETTINGS) or f" (known: {', '.join(POLICY_SETTINGS)})"
                self.error(sub, f"unknown policy '{name}'{hint}", at_key=True)
                continue
            # `pii-detector:` with nothing under it means "the defaults".
            checked = self.check({} if settings is None else settings, POLICY_SETTINGS[name], sub)
            if checked is not _INVALID:
                out[name] = checked
        return out

    # --- environment ---------------------------------------------------------------------------

    def expand(self, value: str, path: str) -> Any:
        """Expand `${NAME}` and `${NAME:-default}`; an unset NAME with no default is an error."""
        missing: list[str] = []

        def replace(match: re.Match[str]) -> str:
            name, default = match["name"], match["default"]
            if name in self.environ:
                return self.environ[name]
            if default is not None:
                return default
            missing.append(name)
            return ""

        expanded = _ENV_REF.sub(replace, value)
        for name in missing:
            self.error(path, f"environment variable {name} is not set")
        self._from_env.add(path)
        return _INVALID if missing else expanded

    # --- rules across fields -------------------------------------------------------------------

    def cross_checks(self, config: dict[str, Any], raw: dict[str, Any]) -> None:
        providers = config.get("providers", {})
        targets = providers.get("targets", [])
        ids = self.check_targets(targets)
        # If a target's id (or the list itself) was already reported bad, an "unknown target id"
        # here could be a false alarm: skip the fallback check rather than guess.
        raw_providers = raw.get("providers")
        lost_list = isinstance(raw_providers, dict) and "targets" in raw_providers and "targets" not in providers
        all_ids = all(isinstance(t, dict) and isinstance(t.get("id"), str) for t in targets)
        if all_ids and not lost_list:
            self.check_fallback(providers.get("fallback", {}), ids)
        self.check_chain(config.get("policies", {}).get("chain", []))
        self.check_state_dir(config.get("gateway", {}).get("state_dir"))
        self.check_store(config.get("store", {}), raw.get("store"))
        self.check_otlp_endpoint(config.get("observability", {}).get("otlp_endpoint"))

    def check_otlp_endpoint(self, endpoint: Any) -> None:
        """`observability.otlp_endpoint`: an OTLP/HTTP collector's base URL (no gRPC here)."""
        if not isinstance(endpoint, str):
            return
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.error(
                "observability.otlp_endpoint",
                "must be an http:// or https:// base URL of an OTLP/HTTP collector (e.g. http://127.0.0.1:4318)",
            )

    def check_state_dir(self, state_dir: Any) -> None:
        """What `serve` would trip over when it opens its stores there; a directory that does not
        exist yet is fine (serve creates it)."""
        if not isinstance(state_dir, str):
            return
        path = "gateway.state_dir"
        if not state_dir or "\x00" in state_dir:
            self.error(path, "must be a directory path (not empty, no NUL character)")
            return
        here = Path(state_dir)
        for parent in (here, *here.parents):
            if parent.exists():
                if not parent.is_dir():
                    self.error(path, "is not a directory (a file is in the way)")
                break

    def check_store(self, store: dict[str, Any], raw: Any) -> None:
        """`store.backend: postgres` needs a DSN libpq can parse. The DSN holds a password, so no
        message here quotes it (nor libpq's own complaint, which may)."""
        dsn = store.get("postgres_dsn")
        if store.get("backend") == "postgres" and dsn is None:
            if not (isinstance(raw, dict) and "postgres_dsn" in raw):  # else already reported
                self.error("store.backend", "store.backend postgres needs store.postgres_dsn")
        if isinstance(dsn, str):
            from kt_trio.postgres import dsn_problem  # psycopg is only imported when a DSN is set

            problem = dsn_problem(dsn)
            if problem is not None:
                self.error("store.postgres_dsn", problem)
        instance_id = store.get("instance_id")
        # Empty means unset (`${INSTANCE:-}` in a file the CLIs read too): the hostname:port default.
        if isinstance(instance_id, str) and not (len(instance_id) <= 200 and instance_id.isprintable()):
            self.error("store.instance_id", "store.instance_id must be at most 200 printable characters")

    def check_fallback(self, fallback: dict[str, list[Any]], ids: dict[str, int]) -> None:
        for source, chain in fallback.items():
            sub = child_path("providers.fallback", source)
            if source not in ids:
                self.error(sub, f"unknown target id '{source}'{did_you_mean(source, ids)}", at_key=True)
            for index, target_id in enumerate(chain):
                if isinstance(target_id, str) and target_id not in ids:
                    hint = did_you_mean(target_id, ids)
                    self.error(child_path(sub, index), f"unknown target id '{target_id}'{hint}")

    def check_chain(self, chain: list[Any]) -> None:
        seen: set[str] = set()
        for index, name in enumerate(chain):
            sub = child_path("policies.chain", index)
            if not isinstance(name, str):
                continue  # already reported as the wrong type
            if name not in POLICY_SETTINGS:
                hint = did_you_mean(name, POLICY_SETTINGS) or f" (known: {', '.join(POLICY_SETTINGS)})"
                self.error(sub, f"unknown policy '{name}'{hint}")
            elif name in seen:
                self.error(sub, f"policy '{name}' is listed twice")
            seen.add(name)

    def check_targets(self, targets: list[Any]) -> dict[str, int]:
        """Per-target rules that span fields; returns target id -> index."""
        ids: dict[str, int] = {}
        for index, target in enumerate(targets):
            if not isinstance(target, dict):
                continue
            path = child_path("providers.targets", index)
            target_id = target.get("id")
            if target_id in ids:
                first_line = self.doc.value_pos(f"providers.targets[{ids[target_id]}].id")[0]
                self.error(f"{path}.id", f"duplicate target id '{target_id}' (first on line {first_line})")
            elif target_id is not None:
                ids[target_id] = index
            base_url: str | None = target.get("base_url")
            provider = target.get("provider")
            if provider == "azure-openai" and base_url is None:
                self.doc.issue(f"{path}.base_url", self.doc.value_pos(path), "an azure-openai target needs a base_url")
            transport = target.get("transport")
            if base_url is not None and transport is not None:
                is_ws = base_url.startswith(("ws://", "wss://"))
                # An azure-openai resource URL plus `deployment` names its Realtime endpoint.
                azure_resource = target.get("provider") == "azure-openai" and bool(target.get("deployment"))
                if transport == "websocket" and not is_ws and not azure_resource:
                    self.error(f"{path}.transport", "transport websocket needs a ws:// or wss:// base_url")
                if transport == "http" and is_ws:
                    self.error(f"{path}.transport", "transport http needs an http:// or https:// base_url")
            if base_url is None and transport == "websocket" and provider == "anthropic":
                # Only openai has a public WebSocket endpoint the gateway knows (DESIGN.md); azure
                # without a base_url is reported above.
                message = "an anthropic target has no public WebSocket endpoint: give it a ws:// or wss:// base_url"
                self.error(f"{path}.transport", message)
            self.check_secret(target, path)
        return ids

    def check_secret(self, target: dict[str, Any], path: str) -> None:
        """A secret already in the environment is checked now, as `serve` checks it at start
        (`resolve_secrets`): it must fit in an HTTP header. Never quoted."""
        ref = target.get("secret_key_ref")
        name = ref.get("env") if isinstance(ref, dict) else None
        if not isinstance(name, str) or name not in self.environ:
            return
        problem = secret_problem(self.environ[name])
        if problem is not None and self.environ[name]:
            self.error(f"{path}.secret_key_ref.env", secret_message(name, target.get("id"), problem))
