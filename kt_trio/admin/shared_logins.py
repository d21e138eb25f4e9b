"""Console logins in Redis, for `state.backend: redis`: `serve --workers N` and several instances
behind one name all know a login, whichever of them answers the console's next request.

One string per login, `kt:console:<SHA-256 of the token>` = the admin key's name, expiring with
the login (`SET ... EX`): Redis forgets it by itself, so the number kept is bounded by how often
admins log in within the login's lifetime. The token itself is never stored. One round trip per
admin request that carries the cookie (admin traffic, never per relayed message).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kt_trio.admin.auth import LOGIN_TTL_SECS, new_token, token_digest
from kt_trio.state.link import RedisLink

PREFIX = "kt:console:"


class RedisLogins:
    def __init__(
        self, link: RedisLink, ttl_secs: float = LOGIN_TTL_SECS, clock: Callable[[], float] = time.time
    ) -> None:
        self.ttl_secs = ttl_secs
        self._link = link
        self._clock = clock

    async def open(self, key_name: str) -> tuple[str, float]:
        token = new_token()
        name = PREFIX + token_digest(token)
        await self._link.call(lambda: self._link.client.set(name, key_name, ex=int(self.ttl_secs)))
        return token, self._clock() + self.ttl_secs

    async def resolve(self, token: str) -> str | None:
        name = PREFIX + token_digest(token)
        found = await self._link.call(lambda: self._link.client.get(name))
        return str(found) if found is not None else None

    async def close(self, token: str) -> str | None:
        name = PREFIX + token_digest(token)
        found = await self._link.call(lambda: self._link.client.getdel(name))
        return str(found) if found is not None else None
