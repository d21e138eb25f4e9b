"""Short-lived client secrets (`kt_ek_...`) minted by `POST /v1/realtime/client_secrets`.

DESIGN.md: a browser gets a `kt_ek_` secret from the gateway (never the provider's ephemeral
key, which would let it talk to the provider with no gateway at all), and the secret is
accepted wherever its `kt_gk_` key is, for new sessions until it expires, carrying the key's
pack, team, limits and models; revoking the key revokes its secrets.

Where they live: in the memory of the gateway process that minted them, as the SHA-256 of the
secret beside its key's *name* and its expiry. Nothing of the key is kept: every use looks the
key up by name in the key store (`KeyRing.authenticate`), so a revoked, expired or re-scoped key
takes its secrets with it at once, with no revocation list to keep in step. Memory, not a
table in keys.db: secrets live at most two hours, a restart that forgets them only makes a
browser fetch a new one (it does on every page load anyway), and the key store (SQLite or
PostgreSQL, changed in parallel) stays as it is. The price: with several gateway processes
behind one address (`--workers N`, several hosts) a secret works only on the process that minted
it, so route `/v1/realtime/client_secrets` and the browser's WebSocket to the same process
(sticky by client address) or keep one worker for browser traffic.

Bounded: at most `MAX_LIVE` live secrets; expired ones are dropped as new ones are minted.
"""

from __future__ import annotations

import hashlib
import heapq
import secrets

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


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


class TooManySecrets(Exception):
    pass


class ClientSecrets:
    def __init__(self, max_live: int = MAX_LIVE) -> None:
        self._by_digest: dict[bytes, ClientSecret] = {}
        self._expiries: list[tuple[float, bytes]] = []  # a heap: the next to expire first
        self._max_live = max_live

    def __len__(self) -> int:
        return len(self._by_digest)

    def mint(self, key_name: str, ttl_secs: float, now: float) -> tuple[str, float]:
        """A new secret for key `key_name` and its expiry (epoch seconds). The secret exists only
        in the return value: the caller hands it to the client once."""
        self._prune(now)
        if len(self._by_digest) >= self._max_live:
            raise TooManySecrets
        value = CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)
        digest = _digest(value)
        expires_at = float(int(now + ttl_secs))  # whole seconds, as OpenAI's `expires_at`
        self._by_digest[digest] = ClientSecret(key_name, expires_at)
        heapq.heappush(self._expiries, (expires_at, digest))
        return value, expires_at

    def resolve(self, presented: str, now: float) -> ClientSecret | None:
        """The secret's record when `presented` is a live secret, else None."""
        found = self._by_digest.get(_digest(presented))
        if found is None or now >= found.expires_at:
            return None
        return found

    def _prune(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, digest = heapq.heappop(self._expiries)
            self._by_digest.pop(digest, None)


def is_client_secret(presented: str | None) -> bool:
    return presented is not None and presented.startswith(CLIENT_SECRET_PREFIX)


__all__ = ["CLIENT_SECRET_PREFIX", "ClientSecret", "ClientSecrets", "TooManySecrets"]
