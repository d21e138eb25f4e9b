"""A gateway key's daily token budget, shared by all of its sessions and kept in `keys.db`.

The key store counts each key's tokens per UTC day and reports every alert threshold once per
day, across restarts and gateway processes (`kt_trio.keys.store`); this adapter turns that into
the session's vocabulary: `exhausted` (refuse new responses) and `BudgetAlert` records.
"""

from __future__ import annotations

from kt_trio.keys import KeyRing
from kt_trio.records import BudgetAlert


class KeyTokenBudget:
    def __init__(self, ring: KeyRing, key_name: str, daily_tokens: int) -> None:
        self._ring = ring
        self.key_name = key_name
        self.daily_tokens = daily_tokens
        self.exhausted = False

    async def refresh(self) -> None:
        """Reads today's use (a new session, maybe a new day, maybe after a restart)."""
        self.exhausted = (await self._ring.daily_usage(self.key_name)).exceeded

    async def add(self, tokens: int, session_id: str) -> list[BudgetAlert]:
        state = await self._ring.record_tokens(self.key_name, tokens)
        self.exhausted = state.exceeded
        limit = state.limit or self.daily_tokens
        return [BudgetAlert(session_id, t, state.used, limit, exceeded=t >= 1.0) for t in state.crossed]
