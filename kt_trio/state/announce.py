"""`keys revoke --terminate` run from the command line, told to every instance through Redis.

The command has no gateway process of its own: it changes the key store, which every instance
polls once a second. When the gateway's config (`--config`) says `state.backend: redis`, it
also does what a gateway does on a revocation (`fanout.publish_revoked`): adds the key to
`kt:revoked` and publishes it on `kt:revocations`, so every instance ends the key's sessions
(1008 "key revoked") at once, including instances whose key store the command did not write.
"""

from __future__ import annotations

from collections.abc import Iterable

import trio

from kt_trio.config.loader import load_config
from kt_trio.state.base import StateUnavailable
from kt_trio.state.fanout import publish_revoked
from kt_trio.state.link import RedisLink

# A CLI waits this long for Redis at most (connect and one pipeline), then falls back on the poll.
CLI_TIMEOUT_SECS = 5.0


def announce_revoked(config_file: str, names: Iterable[str]) -> str | None:
    """Tells the cluster sharing the config's Redis; None when done or not redis, else why not."""
    config = load_config(config_file)
    if config.state.backend != "redis":
        return None
    return trio.run(_announce, config.state.redis_url, sorted(set(names)))


async def _announce(url: str, names: list[str]) -> str | None:
    link = RedisLink(url)
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        try:
            with trio.fail_after(CLI_TIMEOUT_SECS):
                await publish_revoked(link, names)
        except (StateUnavailable, trio.TooSlowError) as exc:
            return str(exc) or f"redis at {link.where} did not answer"
        finally:
            nursery.cancel_scope.cancel()
    return None
