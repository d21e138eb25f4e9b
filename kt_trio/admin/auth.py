"""Who may use the admin API and the console: an admin key, in a header or behind a login cookie.

Two ways in, one verdict (`AdminAuth.authenticate`):

- a gateway key with the `admin` scope in `Authorization: Bearer kt_gk_...` or `api-key`, checked
  against the key store on every request, whatever `gateway.auth.require_keys` says (DESIGN.md
  "Operating it live"). A `kt_ek_` client secret is refused here: it exists to let a browser open
  a model session, and must not become an admin credential if its key happens to be one;
- the console's login cookie (`COOKIE_NAME`), set by `POST /console/login` after the same check.
  Its value is an opaque random token; `ConsoleLogins` maps its SHA-256 to the key's *name* and an
  expiry, in memory and bounded in number (with `state.backend: redis`, `RedisLogins` keeps the
  same in Redis, so every worker and instance knows a login). The key itself is never in the cookie, never kept, and
  every use looks the key up again by name, so revoking it (or dropping `admin`) logs it out.

A browser attaches cookies to requests any site makes, so a cookie proves nothing about who is
asking: for cookie-authenticated requests the `Origin` header, when present, must be the gateway's
own (its host and port equal to the `Host` the request was sent to), and state-changing methods
must send one. A header key needs no such check: no browser sends one by itself.

Refusals are (status, error type, code, message) for the one error-body builder
(`kt_trio.providers.errors`): 401 `invalid_key` (no or bad credential), 403 `key_scope` (no
`admin` scope), 403 `origin_not_allowed`.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from attrs import frozen

from kt_trio.keys.auth import KeyDecision, KeyInfo
from kt_trio.keys.client_secrets import CLIENT_SECRET_PREFIX
from kt_trio.keys.store import KEY_PREFIX
from kt_trio.session.upstream_headers import client_credential
from kt_trio.state.base import StateUnavailable
from kt_trio.wire.browser_headers import cookie as browser_cookie
from kt_trio.wire.browser_headers import is_own_origin

COOKIE_NAME = "kt_console"
SCOPE = "admin"
# A console left open over a working day stays logged in; past that, log in again.
LOGIN_TTL_SECS = 12 * 3600.0
# Logins kept at once. Each is ~200 bytes; past this the oldest is forgotten (its browser logs in
# again), so a script logging in in a loop cannot grow the gateway's memory.
MAX_LOGINS = 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Refusal = tuple[int, str, str, str]
# (presented key, scope) -> the key store's verdict; (key name, scope) -> the same for a login.
CheckKey = Callable[[str, str], Awaitable[KeyDecision]]
CheckName = Callable[[str, str], Awaitable[KeyDecision]]

MISSING = (
    401,
    "authentication_error",
    "invalid_key",
    "an admin key is required: send Authorization: Bearer kt_gk_... (or api-key), or log in at /console",
)
LOGIN_EXPIRED = (401, "authentication_error", "invalid_key", "the console login has expired; log in again")
LOGINS_UNAVAILABLE = (
    503,
    "server_error",
    "state_unavailable",
    "console logins are kept in the shared state (redis), which is unavailable; try again shortly",
)
FOREIGN_ORIGIN = (403, "permission_error", "origin_not_allowed", "this Origin may not use the console login")
NO_ORIGIN = (
    403,
    "permission_error",
    "origin_not_allowed",
    "a request that changes something with the console login must send an Origin header",
)


@frozen
class Admin:
    """Who is acting: the admin key (its name and settings, never the secret) and how it came."""

    key: KeyInfo
    via_cookie: bool = False


@frozen
class _Login:
    key_name: str
    expires_at: float


class Logins(Protocol):
    """Where console logins live: this process's memory (`ConsoleLogins`), or Redis when the
    gateway's state is shared (`kt_trio.admin.shared_logins`), so every worker knows them."""

    ttl_secs: float

    async def open(self, key_name: str) -> tuple[str, float]: ...

    async def resolve(self, token: str) -> str | None: ...

    async def close(self, token: str) -> str | None: ...


class ConsoleLogins:
    """Console login tokens -> key name and expiry, in memory; only the tokens' SHA-256 is kept."""

    def __init__(
        self, ttl_secs: float = LOGIN_TTL_SECS, capacity: int = MAX_LOGINS, clock: Callable[[], float] = time.time
    ) -> None:
        self.ttl_secs = ttl_secs
        self._capacity = capacity
        self._clock = clock
        self._logins: OrderedDict[str, _Login] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._logins)

    async def open(self, key_name: str) -> tuple[str, float]:
        """A new login for `key_name`: (the cookie's token, its expiry as epoch seconds)."""
        now = self._clock()
        self._forget_expired(now)
        while len(self._logins) >= self._capacity:
            self._logins.popitem(last=False)
        token = new_token()
        expires_at = now + self.ttl_secs
        self._logins[token_digest(token)] = _Login(key_name, expires_at)
        return token, expires_at

    async def resolve(self, token: str) -> str | None:
        """The key name a live login token stands for, or None."""
        digest = token_digest(token)
        login = self._logins.get(digest)
        if login is None:
            return None
        if login.expires_at <= self._clock():
            del self._logins[digest]
            return None
        return login.key_name

    async def close(self, token: str) -> str | None:
        """Forgets a login (logout); the key name it stood for, if it was live."""
        login = self._logins.pop(token_digest(token), None)
        return login.key_name if login is not None else None

    def _forget_expired(self, now: float) -> None:
        for digest in [d for d, login in self._logins.items() if login.expires_at <= now]:
            del self._logins[digest]


def new_token() -> str:
    """256 random bits: the cookie's value, which says nothing about the key."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What is kept of a token: a lost memory dump or Redis snapshot gives no usable cookie."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def cookie(headers: Sequence[tuple[str, str]], name: str = COOKIE_NAME) -> str | None:
    """The console's login cookie (or cookie `name`) of a request."""
    return browser_cookie(headers, name)


def header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k == name), None)


def origin_refusal(method: str, headers: Sequence[tuple[str, str]]) -> Refusal | None:
    """The Origin rule for a cookie-authenticated request (see the module docstring)."""
    origin = header(headers, "origin")
    if origin is None:
        return None if method in SAFE_METHODS else NO_ORIGIN
    return None if is_own_origin(origin, header(headers, "host")) else FOREIGN_ORIGIN


def decision_refusal(decision: KeyDecision) -> Refusal:
    if decision.status == 503:
        return (503, "server_error", "keys_unavailable", decision.message)
    if decision.status == 403:
        return (403, "permission_error", "key_scope", decision.message)
    return (decision.status, "authentication_error", "invalid_key", decision.message)


class AdminAuth:
    """The verdict on one admin request (or `/ws/events` upgrade) from its method and headers."""

    def __init__(self, check_key: CheckKey, check_name: CheckName, logins: Logins | None = None) -> None:
        self._check_key = check_key
        self._check_name = check_name
        self.logins: Logins = logins or ConsoleLogins()

    async def key(self, presented: str | None) -> Admin | Refusal:
        """An admin key presented in a header (or a login form)."""
        if not presented:
            return MISSING
        if presented.startswith(CLIENT_SECRET_PREFIX):
            return (401, "authentication_error", "invalid_key", "client secrets are not accepted on the admin API")
        if not presented.startswith(KEY_PREFIX):
            return (401, "authentication_error", "invalid_key", "invalid gateway key")
        decision = await self._check_key(presented, SCOPE)
        if not decision.ok or decision.key is None:
            return decision_refusal(decision)
        return Admin(decision.key)

    async def login(self, token: str) -> Admin | Refusal:
        """The admin behind a console login token, its key checked again by name."""
        try:
            name = await self.logins.resolve(token)
        except StateUnavailable:
            return LOGINS_UNAVAILABLE
        if name is None:
            return LOGIN_EXPIRED
        decision = await self._check_name(name, SCOPE)
        if not decision.ok or decision.key is None:
            with contextlib.suppress(StateUnavailable):
                await self.logins.close(token)
            return decision_refusal(decision)
        return Admin(decision.key, via_cookie=True)

    async def authenticate(self, method: str, headers: Sequence[tuple[str, str]]) -> Admin | Refusal:
        """A header key wins; else the login cookie, under the Origin rule; else 401."""
        credential = client_credential(headers, ())
        if credential is not None:
            return await self.key(credential.value)
        token = cookie(headers)
        if token is None:
            return MISSING
        refused = origin_refusal(method, headers)
        if refused is not None:
            return refused
        return await self.login(token)

    async def console_login(self, headers: Sequence[tuple[str, str]]) -> Admin | Refusal | None:
        """For `/ws/events`: the admin behind a console cookie (Origin checked as for a GET),
        a refusal, or None when the request carries no console cookie."""
        token = cookie(headers)
        if token is None:
            return None
        refused = origin_refusal("GET", headers)
        if refused is not None:
            return refused
        return await self.login(token)
