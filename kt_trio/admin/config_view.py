"""`GET /admin/config`: the active config of every pack, with every secret masked.

What is a secret is said once, in the schema: a field declared `repr=False` (event-stream
`tokens`, `state.redis_url`, `store.postgres_dsn`, the guardrail's `headers`, and any added
later the same way). Such a value is shown masked: a URL or DSN keeps its shape with the password
and query values replaced by `***` (so the operator still sees which host it points at), anything
else becomes `***`, a mapping keeps its keys. Provider secrets are not in the config at all (it
names the environment variable, `secret_key_ref.env`); as a second guard, every secret value the
gateway holds (provider secrets, tokens, header values, passwords) is scrubbed from every string
of the answer, wherever a `${ENV}` expansion may have copied it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from kt_trio.admin.host import AdminHost
from kt_trio.admin.router import AdminApp, AdminRequest, Answer

MASK = "***"
# Not config keys: where the config was read from (shown once as `file`).
_SKIPPED = frozenset({"origin"})
# Secrets shorter than this are not scrubbed from other strings: "a" would mangle everything, and
# a secret that short protects nothing anyway.
MIN_SCRUB_CHARS = 4
# libpq key=value DSN parameters that say where, not how to get in: shown as written.
_DSN_SHOWN = frozenset({"host", "hostaddr", "port", "dbname", "user", "sslmode", "connect_timeout", "application_name"})
_DSN_WORD = re.compile(r"[a-z_]+=")
_DSN_KEYWORDS = _DSN_SHOWN | {"password", "passfile", "service"}
# URL query parameters whose values are credentials (the rest are masked but not hunted for).
_CREDENTIAL_PARAM = re.compile(r"pass|token|secret|key|auth", re.IGNORECASE)


def _mask_url(parts: SplitResult) -> str:
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = netloc.rpartition("@")[2]
        netloc = f"{user}:{MASK}@{host}"
    elif "@" in netloc:  # a bare userinfo (redis://token@host) is a credential too
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _is_dsn(value: str) -> bool:
    """A libpq `key=value ...` string (not a token that happens to hold `=`, as base64 does)."""
    words = value.split()
    return (
        bool(words)
        and all(_DSN_WORD.match(w) for w in words)
        and any(w.partition("=")[0] in _DSN_KEYWORDS for w in words)
    )


def mask_secret(value: str) -> str:
    """A secret string as it may be shown (see the module docstring)."""
    if "://" in value:
        try:
            return _mask_url(urlsplit(value))
        except ValueError:
            return MASK
    if _is_dsn(value):
        # A libpq key=value DSN: every value but the harmless ones is masked.
        words = []
        for word in value.split():
            key, _, _ = word.partition("=")
            words.append(word if key in _DSN_SHOWN else f"{key}={MASK}")
        return " ".join(words)
    return MASK


def masked(value: Any, secret: bool = False) -> Any:
    """`value` (a config object) as JSON-able data, secrets masked."""
    if attrs.has(type(value)):
        out: dict[str, Any] = {}
        for field in attrs.fields(type(value)):
            if field.name in _SKIPPED:
                continue
            out[field.name] = masked(getattr(value, field.name), secret or field.repr is False)
        return out
    if isinstance(value, Mapping):
        return {str(k): masked(v, secret) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [masked(v, secret) for v in value]
    if isinstance(value, str):
        return mask_secret(value) if secret else value
    if value is None or isinstance(value, bool | int | float):
        return MASK if secret and value is not None else value
    return masked(str(value), secret)


def secret_values(value: Any, secret: bool = False) -> Iterable[str]:
    """Every secret string inside a config object, and the passwords inside secret URLs."""
    if attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            if field.name not in _SKIPPED:
                yield from secret_values(getattr(value, field.name), secret or field.repr is False)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from secret_values(v, secret)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from secret_values(v, secret)
    elif secret and isinstance(value, str):
        yield value
        if "://" in value:
            try:
                parts = urlsplit(value)
            except ValueError:
                return
            if parts.password:
                yield parts.password
            elif parts.username:  # redis://token@host: the bare userinfo is the credential
                yield parts.username
            yield from (v for k, v in parse_qsl(parts.query) if _CREDENTIAL_PARAM.search(k))
            return
        if _is_dsn(value):
            for word in value.split():
                key, _, found = word.partition("=")
                if key not in _DSN_SHOWN:
                    yield found


def scrubbed(value: Any, secrets: list[str]) -> Any:
    """`value` with every occurrence of each secret replaced by `***`, in every string."""
    if isinstance(value, dict):
        return {scrubbed(k, secrets): scrubbed(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrubbed(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
    return value


def active_config(host: AdminHost) -> dict[str, Any]:
    default = host.config
    secrets: set[str] = set()
    for pack in host.packs.values():
        secrets.update(pack.secrets.values())
        secrets.update(secret_values(pack.config))
    longest_first = sorted((s for s in secrets if len(s) >= MIN_SCRUB_CHARS), key=len, reverse=True)
    body = {
        "default_pack": default.pack.name,
        "file": default.origin.file if default.origin is not None else None,
        "packs": {name: masked(pack.config) for name, pack in host.packs.items()},
    }
    return scrubbed(body, longest_first)  # type: ignore[no-any-return]


def add_config_routes(app: AdminApp, host: AdminHost) -> None:
    async def show_config(request: AdminRequest) -> Answer:
        return Answer(200, active_config(host))

    app.register("GET", "/admin/config", show_config)
