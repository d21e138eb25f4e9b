"""What the gateway asks at each handshake: is this key good for this route?

`decide` is the pure part (a presented key, the stored row it points at, a scope, a time -> a
`KeyDecision`); `KeyRing` is the I/O around it: it finds the row in keys.db (or PostgreSQL, shared
by every instance, with `store.backend: postgres`) on a worker thread
(`trio.to_thread` with a limiter of 1, like the audit writer) and records usage.

Freshness: `KeyRing` keeps no cache. Every `authenticate` runs one indexed SELECT by prefix, so a
key created or revoked by `python -m kt_trio keys ...` while the gateway runs counts from the next
handshake on, with no restart and no invalidation logic. That costs a thread hop and a B-tree
lookup (tens of microseconds) per handshake, next to an upstream dial of tens of milliseconds.

The key is a secret: nothing here logs it, puts it in a message, or keeps it past the call.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import trio
from attrs import frozen

from kt_trio.keys.client_secrets import ClientSecrets, SecretStore, SecretsUnavailable, is_client_secret
from kt_trio.keys.spend import SpendState, daily_spend, record_spend
from kt_trio.keys.store import (
    ALERT_THRESHOLDS,
    DailyBudgetState,
    KeyRecord,
    KeyStore,
    hash_key,
    key_prefix,
    open_key_store,
)
from kt_trio.records import SpendScope

if TYPE_CHECKING:
    from kt_trio.config.schema import Store

log = logging.getLogger("kt_trio.keys")

T = TypeVar("T")

ROUTE_SCOPES: dict[str, str] = {
    "/v1/realtime": "realtime",
    "/v1/responses": "realtime",
    "/v1/chat/completions": "chat",
    "/ws/events": "events",
}
"""The scope each route needs (DESIGN.md endpoints)."""

# `admin` is a superset of `events` only: an admin key sees every team's events, but it does not
# open model sessions unless it also has those scopes.
_IMPLIED_BY: dict[str, tuple[str, ...]] = {"events": ("admin",)}


def scope_for_path(path: str) -> str | None:
    """The scope a route needs, or None for a path that needs no key (health, metrics)."""
    return ROUTE_SCOPES.get(path.split("?", 1)[0])


def scope_allows(scopes: Iterable[str], scope: str) -> bool:
    held = set(scopes)
    return scope in held or any(s in held for s in _IMPLIED_BY.get(scope, ()))


@frozen
class KeyInfo:
    """A key as the gateway sees it: identity, binding and limits. No secret, no hash."""

    name: str
    prefix: str
    pack: str | None
    team: str | None
    scopes: tuple[str, ...]
    expires_at: float | None
    max_sessions: int | None
    messages_per_minute: int | None
    daily_tokens: int | None
    # `keys create --models`: the only models the key (and its client secrets) may use; None: any.
    models: tuple[str, ...] | None = None
    # `keys create --daily-usd`: spend per UTC day in US dollars; None: no USD budget.
    daily_usd: float | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    @classmethod
    def of(cls, record: KeyRecord) -> KeyInfo:
        return cls(
            name=record.name,
            prefix=record.prefix,
            pack=record.pack,
            team=record.team,
            scopes=record.scopes,
            expires_at=record.expires_at,
            max_sessions=record.max_sessions,
            messages_per_minute=record.messages_per_minute,
            daily_tokens=record.daily_tokens,
            models=record.models,
            daily_usd=record.daily_usd,
        )


@frozen
class KeyDecision:
    """`status`: 200 ok; 401 missing, unknown, expired or revoked (the reason in `message`);
    403 the key lacks the route's scope; 503 a client secret could not be checked (shared state
    unavailable). `key` is set whenever the key itself was recognised
    (so a 403 or an expired key can still be attributed to its name in logs and metrics)."""

    ok: bool
    status: int
    message: str
    key: KeyInfo | None = None


MISSING = KeyDecision(
    False,
    401,
    "missing gateway key: send Authorization: Bearer kt_gk_..., an api-key header,"
    " or the openai-insecure-api-key.<key> subprotocol",
)
UNKNOWN = KeyDecision(False, 401, "invalid gateway key")
EXPIRED_SECRET = KeyDecision(False, 401, "invalid or expired client secret")


def decide(presented: str | None, found: tuple[KeyRecord, str] | None, *, scope: str, now: float) -> KeyDecision:
    """The verdict on a presented key, given the row its prefix found (or None).

    A revoked or expired key is reported as such only once the whole key matched, so a caller
    who merely guesses a prefix learns nothing about it."""
    if not presented:
        return MISSING
    if found is None:
        return UNKNOWN
    record, stored_hash = found
    if not hmac.compare_digest(hash_key(presented), stored_hash):
        return UNKNOWN
    return verdict(record, scope=scope, now=now)


def verdict(record: KeyRecord, *, scope: str, now: float) -> KeyDecision:
    """The verdict on a recognised key (presented, or the key a client secret was minted for)."""
    info = KeyInfo.of(record)
    if record.revoked_at is not None:
        return KeyDecision(False, 401, f"gateway key {record.name!r} has been revoked", info)
    if record.expires_at is not None and now >= record.expires_at:
        return KeyDecision(False, 401, f"gateway key {record.name!r} has expired", info)
    if not scope_allows(record.scopes, scope):
        return KeyDecision(False, 403, f"gateway key {record.name!r} does not have the {scope!r} scope", info)
    return KeyDecision(True, 200, "ok", info)


class KeyRing:
    """The gateway's handle on keys.db. Open once per gateway (`await KeyRing.open(state_dir)`,
    or `async with await KeyRing.open(...)`), close with `aclose`."""

    def __init__(self, store: KeyStore, client_secrets: SecretStore | None = None) -> None:
        self._store = store
        # The gateway passes its shared state's (`state.client_secrets`: in Redis with
        # `state.backend: redis`); alone, the ring keeps them in this process.
        self.client_secrets: SecretStore = ClientSecrets() if client_secrets is None else client_secrets
        # One at a time on the connection: sqlite3 connections are not shared between threads.
        self._limiter = trio.CapacityLimiter(1)

    @classmethod
    async def open(
        cls, state_dir: str | Path, store: Store | None = None, *, client_secrets: SecretStore | None = None
    ) -> KeyRing:
        """Open (creating if need be) `<state_dir>/keys.db`, or the PostgreSQL key tables when
        `store.backend` is `postgres`: a gateway that requires keys starts fine before the first
        key exists, and refuses everyone until one does."""
        return cls(await trio.to_thread.run_sync(open_key_store, state_dir, store), client_secrets)

    async def aclose(self) -> None:
        # Shielded: closing is quick and must happen even when the gateway is being cancelled.
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._store.close, limiter=self._limiter)

    async def __aenter__(self) -> KeyRing:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def authenticate(self, presented: str | None, *, scope: str, now: float | None = None) -> KeyDecision:
        """The verdict for a handshake (or a chat request) presenting `presented` on a route that
        needs `scope`. Notes the key's use (at most once a minute) when it is accepted."""
        when = time.time() if now is None else now
        if is_client_secret(presented):
            assert presented is not None
            return await self._authenticate_secret(presented, scope, when)
        prefix = key_prefix(presented) if presented else None
        if prefix is None or not presented:
            return MISSING if not presented else UNKNOWN
        return await trio.to_thread.run_sync(self._authenticate, presented, prefix, scope, when, limiter=self._limiter)

    async def _authenticate_secret(self, presented: str, scope: str, now: float) -> KeyDecision:
        """A `kt_ek_` client secret: live, and its key (looked up by name now) still good for
        `scope`: revoking or expiring the key ends its secrets at once. 503 when the shared
        record of secrets (Redis) is needed and unavailable."""
        try:
            found = await self.client_secrets.resolve(presented, now)
        except SecretsUnavailable as exc:
            return KeyDecision(False, 503, str(exc))
        if found is None:
            return EXPIRED_SECRET
        record = await trio.to_thread.run_sync(self._store.get, found.key_name, limiter=self._limiter)
        if record is None:
            return EXPIRED_SECRET
        return verdict(record, scope=scope, now=now)

    async def check_name(self, name: str, *, scope: str, now: float | None = None) -> KeyDecision:
        """The verdict on a key known by name (a console login stands for one): still there, not
        revoked or expired, and good for `scope`."""
        when = time.time() if now is None else now
        record = await trio.to_thread.run_sync(self._store.get, name, limiter=self._limiter)
        if record is None:
            return UNKNOWN
        return verdict(record, scope=scope, now=when)

    async def in_store(self, operation: Callable[[KeyStore], T]) -> T:
        """Runs `operation(store)` on the worker thread that owns the connection (the admin API's
        create, list and revoke: the same calls `kt_trio keys` makes on its own connection)."""
        return await trio.to_thread.run_sync(operation, self._store, limiter=self._limiter)

    async def mint_client_secret(self, key: KeyInfo, ttl_secs: float, now: float | None = None) -> tuple[str, float]:
        """A `kt_ek_` secret for `key`, valid `ttl_secs` (see `kt_trio.keys.client_secrets`);
        `TooManySecrets`, `SecretsUnavailable`."""
        return await self.client_secrets.mint(key.name, ttl_secs, time.time() if now is None else now)

    def _authenticate(self, presented: str, prefix: str, scope: str, now: float) -> KeyDecision:
        decision = decide(presented, self._store.lookup(prefix), scope=scope, now=now)
        if decision.ok and decision.key is not None:
            try:
                self._store.touch(decision.key.name, now)
            except self._store.db.busy_errors as exc:  # the CLI holds the write lock: "last used" can wait
                log.debug("could not note use of key %s: %s", decision.key.name, exc)
        return decision

    async def record_tokens(
        self, key_name: str, tokens: int, now: float | None = None, thresholds: Iterable[float] = ALERT_THRESHOLDS
    ) -> DailyBudgetState:
        """Add tokens to the key's use today (UTC, persisted); `crossed` holds the alert
        thresholds this call crossed, each reported once per key and day."""
        when = time.time() if now is None else now
        return await trio.to_thread.run_sync(
            self._store.record_tokens, key_name, tokens, when, tuple(thresholds), limiter=self._limiter
        )

    async def daily_usage(self, key_name: str, now: float | None = None) -> DailyBudgetState:
        """The key's use today without adding any (e.g. to refuse new work once `exceeded`)."""
        when = time.time() if now is None else now
        return await trio.to_thread.run_sync(self._store.daily_usage, key_name, when, limiter=self._limiter)

    async def record_spend(
        self, scope: SpendScope, name: str, usd: float, limit: float | None, now: float | None = None
    ) -> SpendState:
        """Add dollars to a key's or a team's spend today (UTC, persisted, `kt_trio.keys.spend`);
        `crossed` holds the alert thresholds of `limit` this call crossed, each once per day."""
        when = time.time() if now is None else now
        return await trio.to_thread.run_sync(
            record_spend, self._store.db, scope, name, usd, limit, when, limiter=self._limiter
        )

    async def daily_spend(
        self, scope: SpendScope, name: str, limit: float | None, now: float | None = None
    ) -> SpendState:
        """A key's or a team's spend today without adding any."""
        when = time.time() if now is None else now
        return await trio.to_thread.run_sync(
            daily_spend, self._store.db, scope, name, limit, when, limiter=self._limiter
        )

    async def revoked(self, names: set[str]) -> set[str]:
        """Which of these keys (those of open event subscribers, a handful) are revoked at all:
        a subscription ends on plain revocation, no `--terminate` needed."""
        if not names:
            return set()

        def lookup() -> set[str]:
            records = (self._store.get(name) for name in sorted(names))
            return {r.name for r in records if r is not None and r.revoked_at is not None}

        return await trio.to_thread.run_sync(lookup, limiter=self._limiter)

    async def revoked_since(self, names: set[str]) -> set[str]:
        """Which of these keys (those with live sessions) are now revoked with `--terminate`: the
        gateway closes their sessions with 1008 "key revoked". Poll it; it is one indexed query."""
        if not names:
            return set()
        return await trio.to_thread.run_sync(self._store.terminated, sorted(names), limiter=self._limiter)
