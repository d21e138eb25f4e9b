"""Gateway keys: `kt_gk_` keys for clients, with a pack, a team, scopes and per-key limits.

`kt_trio.keys.store` is the key database (`<state_dir>/keys.db`, or PostgreSQL through
`kt_trio.keys.postgres` with `store.backend: postgres`; hashes only);
`kt_trio.keys.auth` is what the gateway calls at each handshake (`KeyRing.authenticate`);
`kt_trio.keys.cli` is `python -m kt_trio keys create|list|revoke`.
"""

from kt_trio.keys.auth import (
    ROUTE_SCOPES,
    KeyDecision,
    KeyInfo,
    KeyRing,
    decide,
    scope_allows,
    scope_for_path,
)
from kt_trio.keys.store import (
    ALERT_THRESHOLDS,
    DB_NAME,
    KEY_PREFIX,
    SCOPES,
    DailyBudgetState,
    KeyRecord,
    KeyStore,
    KeyStoreError,
    db_path,
    open_key_store,
)

__all__ = [
    "ALERT_THRESHOLDS",
    "DB_NAME",
    "KEY_PREFIX",
    "ROUTE_SCOPES",
    "SCOPES",
    "DailyBudgetState",
    "KeyDecision",
    "KeyInfo",
    "KeyRecord",
    "KeyRing",
    "KeyStore",
    "KeyStoreError",
    "db_path",
    "decide",
    "open_key_store",
    "scope_allows",
    "scope_for_path",
]
