"""`GET|POST /admin/keys` and `DELETE /admin/keys/{name}`: the key store over HTTP, the same
operations `kt_trio keys create|list|revoke` make on the store itself (`KeyStore`), run on the
key ring's worker thread.

`POST` takes DESIGN.md's fields and answers the new key once, as `"key"`, beside its row (the
gateway keeps only its hash). `DELETE ...?terminate=true` also closes the key's live sessions
here at once (1008 "key revoked") and tells other instances (`state.announce_revoked`); every
instance's key poll does the same within a second.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from kt_trio.admin.host import AdminHost, record_action
from kt_trio.admin.router import AdminApp, AdminRequest, Answer
from kt_trio.keys.shapes import parse_duration, record_json
from kt_trio.keys.store import DEFAULT_SCOPES, KeyRecord, KeyStore, KeyStoreError, parse_models, parse_scopes
from kt_trio.providers.errors import refusal
from kt_trio.wire.frames import CloseCode

if TYPE_CHECKING:
    from kt_trio.keys import KeyRing

FIELDS = (
    "name",
    "scopes",
    "team",
    "pack",
    "models",
    "expires_in",
    "max_sessions",
    "messages_per_minute",
    "daily_tokens",
    "daily_usd",
)
_LIMITS = ("max_sessions", "messages_per_minute", "daily_tokens")


def _bad(message: str) -> Exception:
    return refusal(400, "invalid_request_error", "invalid_key_settings", message)


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _bad(f"{name} must be a non-empty string")
    return value


def _names(body: dict[str, Any], name: str) -> list[str] | None:
    """A list of names, also accepted as one comma-separated string (as the CLI writes it)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"{name} must be a list of strings")
    return value


def _count(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(f"{name} must be a whole number of at least 1")
    return value


def _expiry(body: dict[str, Any], now: float) -> float | None:
    value = body.get("expires_in")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return now + parse_duration(value)
        except ValueError as exc:
            raise _bad(f"expires_in: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise _bad("expires_in must be a duration such as 90d or 12h, or a number of seconds")
    return now + float(value)


def key_settings(body: dict[str, Any], packs: set[str], now: float) -> dict[str, Any]:
    """The keyword arguments of `KeyStore.create_key` a POST body asks for; 400 on anything off."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise _bad(f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    name = _text(body, "name")
    if name is None:
        raise _bad("name is required")
    pack = _text(body, "pack")
    if pack is not None and pack not in packs:
        raise _bad(f"this gateway serves no pack {pack!r} (packs: {', '.join(sorted(packs))})")
    try:
        scopes = parse_scopes(_names(body, "scopes") or list(DEFAULT_SCOPES))
        models = _names(body, "models")
        settings: dict[str, Any] = {
            "name": name,
            "pack": pack,
            "team": _text(body, "team"),
            "scopes": scopes,
            "expires_at": _expiry(body, now),
            "models": parse_models(models) if models is not None else None,
            "now": now,
        }
    except (ValueError, KeyStoreError) as exc:
        raise _bad(str(exc)) from None
    for limit in _LIMITS:
        settings[limit] = _count(body, limit)
    usd = body.get("daily_usd")
    if usd is not None:
        if isinstance(usd, bool) or not isinstance(usd, int | float) or not 0 < usd < math.inf:
            raise _bad("daily_usd must be a number of dollars greater than 0")
        settings["daily_usd"] = float(usd)
    return settings


def _ring(host: AdminHost) -> KeyRing:
    keys = host.keys
    if keys is None:
        raise refusal(503, "server_error", "keys_unavailable", "the key store is not open")
    return keys


def add_key_routes(app: AdminApp, host: AdminHost) -> None:
    async def list_keys(request: AdminRequest) -> Answer:
        records = await _ring(host).in_store(KeyStore.list_keys)
        now = time.time()
        return Answer(200, {"object": "list", "data": [record_json(r, now) for r in records]})

    async def create_key(request: AdminRequest) -> Answer:
        assert request.admin is not None
        settings = key_settings(await request.json_object(), set(host.packs), time.time())

        def create(store: KeyStore) -> tuple[str, KeyRecord]:
            return store.create_key(**settings)

        try:
            key, record = await _ring(host).in_store(create)
        except KeyStoreError as exc:
            status, code = (409, "key_exists") if "already exists" in str(exc) else (400, "invalid_key_settings")
            raise refusal(status, "invalid_request_error", code, str(exc)) from None
        await record_action(
            host,
            request.admin.key.name,
            "key_create",
            record.name,
            prefix=record.prefix,
            scopes=",".join(record.scopes),
            team=record.team,
            pack=record.pack,
        )
        return Answer(201, {"key": key, **record_json(record, time.time())})

    async def revoke_key(request: AdminRequest) -> Answer:
        assert request.admin is not None
        terminate = (request.arg("terminate") or "false").lower()
        if terminate not in ("true", "false", "1", "0"):
            raise refusal(400, "invalid_request_error", "invalid_parameter", "terminate must be true or false")
        end_sessions = terminate in ("true", "1")
        name = request.params["name"]
        try:
            record = await _ring(host).in_store(lambda store: store.revoke(name, terminate=end_sessions))
        except KeyStoreError as exc:
            raise refusal(404, "invalid_request_error", "key_not_found", str(exc)) from None
        closed = 0
        if record.terminate:
            for session in list(host.sessions):
                if session.key_name == record.name:
                    session.terminate(CloseCode.POLICY_VIOLATION, "key revoked")
                    closed += 1
            await host.state.announce_revoked({record.name})
        await record_action(
            host, request.admin.key.name, "key_revoke", record.name, terminate=record.terminate, sessions_closed=closed
        )
        return Answer(200, {**record_json(record, time.time()), "sessions_closed": closed})

    app.register("GET", "/admin/keys", list_keys)
    app.register("POST", "/admin/keys", create_key)
    app.register("DELETE", "/admin/keys/{name}", revoke_key)
