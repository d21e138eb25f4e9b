"""Short-lived client secrets (`kt_ek_...`) minted by `POST /v1/realtime/client_secrets`.

DESIGN.md: a browser gets a `kt_ek_` secret from the gateway (never the provider's ephemeral
key, which would let it talk to the provider with no gateway at all), and the secret is
accepted wherever its `kt_gk_` key is, for new sessions until it expires, carrying the key's
pack, team, limits and models; revoking the key revokes its secrets.

What is kept of a secret: the SHA-256 of it beside its key's *name* and its expiry, never the
secret itself. Nothing of the key is kept: every use looks the key up by name in the key store
(`KeyRing.authenticate`), so a revoked, expired or re-scoped key takes its secrets with it at
once, with no revocation list to keep in step.

Where that record lives is the shared state's choice (`SecretStore`, `SharedState.client_secrets`):
- `state.backend: embedded` (one process): `ClientSecrets` here, in the memory of the process.
  A restart forgets them (a browser fetches a new one on every page load anyway).
- `state.backend: redis` (`serve --workers N`, several instances): `kt_trio.state.client_secrets`
  also writes each record to Redis with the secret's remaining life as TTL, so a secret minted
  by one process opens sessions on every process sharing that Redis.

Bounded: at most `MAX_LIVE` live secrets minted by one process (then 429); expired ones are
dropped as new ones are added.
"""

from __future__ import annotations

import hashlib
import heapq
import secrets
from typing import Protocol

from attrs import frozen

CLIENT_SECRET_PREFIX = "kt_ek_"
DEFAULT_TTL_SECS = 600
MAX_TTL_SECS = 7200
MIN_TTL_SECS = 1
# 100k live secrets is ~20 MB; a client minting faster than they expire is refused (429).
MAX_LIVE = 100_000


@frozen
class ClientSecret:
    key_name: str
    expires_at: float


def digest_of(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def new_secret(key_name: str, ttl_secs: float, now: float) -> tuple[str, bytes, ClientSecret]:
    """A fresh secret, its digest and its record (expiring in whole seconds, as OpenAI's
    `expires_at`). The secret exists only in the return value: the caller hands it out once."""
    value = CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)
    return value, digest_of(value), ClientSecret(key_name, float(int(now + ttl_secs)))


class TooManySecrets(Exception):
    pass


class SecretsUnavailable(Exception):
    """The shared record of secrets (Redis) cannot be reached now: 503 `state_unavailable`. The
    message is for the client and never names a secret."""


class SecretStore(Protocol):
    """Where the gateway keeps its client secrets (one per gateway, from its shared state)."""

    async def mint(self, key_name: str, ttl_secs: float, now: float) -> tuple[str, float]:
        """A new secret for key `key_name` and its expiry (epoch seconds); `TooManySecrets`,
        `SecretsUnavailable`."""
        ...

    async def resolve(self, presented: str, now: float) -> ClientSecret | None:
        """The secret's record when `presented` is a live secret, else None; `SecretsUnavailable`
        when that cannot be told now."""
        ...


class SecretTable:
    """Records by digest, at most `max_live` of them; the expired are dropped as others are added."""

    def __init__(self, max_live: int = MAX_LIVE) -> None:
        self._by_digest: dict[bytes, ClientSecret] = {}
        self._expiries: list[tuple[float, bytes]] = []  # a heap: the next to expire first
        self._max_live = max_live

    def __len__(self) -> int:
        return len(self._by_digest)

    def add(self, digest: bytes, record: ClientSecret, now: float) -> bool:
        """Keeps `record`; False (and nothing kept) when the table is full of live records."""
        self._prune(now)
        if len(self._by_digest) >= self._max_live:
            return False
        self._by_digest[digest] = record
        heapq.heappush(self._expiries, (record.expires_at, digest))
        return True

    def discard(self, digest: bytes) -> None:
        self._by_digest.pop(digest, None)  # its heap entry goes when it expires

    def get(self, digest: bytes, now: float) -> ClientSecret | None:
        found = self._by_digest.get(digest)
        if found is None or now >= found.expires_at:
            return None
        return found

    def live(self, now: float) -> list[tuple[bytes, ClientSecret]]:
        """A copy of the live records (digest, record)."""
        return [(d, r) for d, r in self._by_digest.items() if now < r.expires_at]

    def _prune(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, digest = heapq.heappop(self._expiries)
            self._by_digest.pop(digest, None)


class ClientSecrets:
    """`state.backend: embedded`: the secrets of this process, in its memory."""

    def __init__(self, max_live: int = MAX_LIVE) -> None:
        self.table = SecretTable(max_live)

    def __len__(self) -> int:
        return len(self.table)

    async def mint(self, key_name: str, ttl_secs: float, now: float) -> tuple[str, float]:
        value, digest, record = new_secret(key_name, ttl_secs, now)
        if not self.table.add(digest, record, now):
            raise TooManySecrets
        return value, record.expires_at

    async def resolve(self, presented: str, now: float) -> ClientSecret | None:
        return self.table.get(digest_of(presented), now)


def is_client_secret(presented: str | None) -> bool:
    return presented is not None and presented.startswith(CLIENT_SECRET_PREFIX)


__all__ = [
    "CLIENT_SECRET_PREFIX",
    "ClientSecret",
    "ClientSecrets",
    "SecretStore",
    "SecretTable",
    "SecretsUnavailable",
    "TooManySecrets",
]
