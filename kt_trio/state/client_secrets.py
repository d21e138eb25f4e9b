"""`kt_ek_` client secrets shared through Redis (`state.backend: redis`): a secret minted by one
process opens sessions on every process of the cluster (`serve --workers N`, several instances).

Each secret is one Redis string `kt:ek:<hex SHA-256 of the secret>` holding its key's name and
expiry (`{"key": ..., "expires_at": ...}`), with the secret's remaining life as TTL: Redis drops
it when it expires. The secret itself is never stored, only its digest (as in the key store).

Round trips: one `SET ... PX` to mint; to use a secret, none when this process minted it or has
seen it before (a bounded local cache of records, checked against their expiry), else one `GET`.
Only at authentication (a handshake or an HTTP request), never per relayed message. The key is
then looked up by name in the key store on every use, as with the embedded backend, so revoking,
expiring or re-scoping the key ends its secrets at once on every process.

When Redis cannot be reached (`state.on_unavailable`):
- `fail_closed`: minting is refused with 503 `state_unavailable` (a secret nobody else could
  check would fail on the next worker), and so is a secret this process has not cached: the
  same answer as every other admission that needs Redis.
- `fail_open`: minting goes on, the secret kept by this process only (it works where it was
  minted, as with one process) until Redis answers again. A secret not cached here is still
  refused with 503 `state_unavailable`: `fail_open` relaxes shared limits, never authentication.
Secrets already cached keep working in both modes while Redis is away. Each time Redis answers
again, every process writes the live secrets it minted (`run`, pipelined), as it re-asserts its
leases: those minted meanwhile, and those a Redis restarted empty has lost, work everywhere again.
"""

from __future__ import annotations

import json
import math
import time

import trio

from kt_trio.keys.client_secrets import (
    MAX_LIVE,
    ClientSecret,
    SecretsUnavailable,
    SecretTable,
    TooManySecrets,
    digest_of,
    new_secret,
)
from kt_trio.state.base import UNAVAILABLE_MESSAGE, StateUnavailable
from kt_trio.state.link import RedisLink

# Records written per pipeline after an outage: well inside the link's deadline for one call.
SHARE_BATCH = 500


def redis_key(digest: bytes) -> str:
    return f"kt:ek:{digest.hex()}"


def encode(record: ClientSecret) -> str:
    return json.dumps({"key": record.key_name, "expires_at": int(record.expires_at)})


def ttl_ms(record: ClientSecret, now: float) -> int:
    """The secret's remaining life (expires_at is whole seconds, so it may be a little under the
    ttl asked for): Redis forgets the record when the secret is dead."""
    return max(1, math.ceil((record.expires_at - now) * 1000))


def decode(raw: object) -> ClientSecret | None:
    """The record Redis holds, or None for anything not written by `encode`."""
    try:
        fields = json.loads(raw) if isinstance(raw, str | bytes) else None
        name, expires_at = fields["key"], fields["expires_at"]  # type: ignore[index]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(name, str) or not isinstance(expires_at, int | float) or isinstance(expires_at, bool):
        return None
    return ClientSecret(name, float(expires_at))


class SharedClientSecrets:
    """A `SecretStore` whose records are in Redis, with this process's own and seen ones cached."""

    def __init__(self, link: RedisLink, *, fail_open: bool, max_live: int = MAX_LIVE) -> None:
        self.link = link
        self.fail_open = fail_open
        # Minted here: bounds what this process puts in Redis (429 beyond it), as one process did.
        self.minted = SecretTable(max_live)
        # Found in Redis: a cache (when full, a secret is simply asked for again next time).
        self.seen = SecretTable(max_live)
        self._returned = trio.Event()
        link.when_up(lambda: self._returned.set())

    async def mint(self, key_name: str, ttl_secs: float, now: float) -> tuple[str, float]:
        shared = self.link.available
        if not shared and not self.fail_open:
            raise SecretsUnavailable(UNAVAILABLE_MESSAGE)
        value, digest, record = new_secret(key_name, ttl_secs, now)
        if not self.minted.add(digest, record, now):
            raise TooManySecrets
        if shared:
            try:
                await self.link.call(
                    lambda: self.link.client.set(redis_key(digest), encode(record), px=ttl_ms(record, now))
                )
                return value, record.expires_at
            except StateUnavailable:
                if not self.fail_open:
                    self.minted.discard(digest)
                    raise SecretsUnavailable(UNAVAILABLE_MESSAGE) from None
                if self.link.available:  # Redis came back while this call failed: write it now
                    self._returned.set()
        return value, record.expires_at

    async def run(self) -> None:
        """Each time Redis answers again, writes the live secrets this process minted."""
        while True:
            await self._returned.wait()
            self._returned = trio.Event()
            records = self.minted.live(time.time())
            for start in range(0, len(records), SHARE_BATCH):
                if not await self._write(records[start : start + SHARE_BATCH]):
                    break  # down again: the next return writes them all

    async def _write(self, records: list[tuple[bytes, ClientSecret]]) -> bool:
        now = time.time()
        records = [(digest, record) for digest, record in records if record.expires_at > now]
        if not records:
            return True

        async def pipeline() -> None:
            async with self.link.client.pipeline(transaction=False) as p:
                for digest, record in records:
                    p.set(redis_key(digest), encode(record), px=ttl_ms(record, now))

        try:
            await self.link.call(pipeline)
        except StateUnavailable:
            return False
        return True

    async def resolve(self, presented: str, now: float) -> ClientSecret | None:
        digest = digest_of(presented)
        found = self.minted.get(digest, now) or self.seen.get(digest, now)
        if found is not None:
            return found
        if not self.link.available:
            raise SecretsUnavailable(UNAVAILABLE_MESSAGE)
        try:
            raw = await self.link.call(lambda: self.link.client.get(redis_key(digest)))
        except StateUnavailable:
            raise SecretsUnavailable(UNAVAILABLE_MESSAGE) from None
        record = None if raw is None else decode(raw)
        if record is None or now >= record.expires_at:
            return None
        self.seen.add(digest, record, now)
        return record
