"""The audit log: a durable, hash-chained, retention-aware record of sessions and decisions.

`open_audit_log` runs the one writer (`kt_trio.audit.writer`) over the SQLite store
(`kt_trio.audit.store`); `kt_trio.audit.reader` verifies, tails and exports it for the CLI
(`kt_trio.audit.cli`: `python -m kt_trio audit verify|tail|export`).
"""

from kt_trio.audit.entries import AuditError, AuditUnavailable
from kt_trio.audit.store import DB_NAME, GENESIS_HASH, canonical_json, db_path, row_hash
from kt_trio.audit.writer import DEFAULT_QUEUE_SIZE, AuditLog, open_audit_log

__all__ = [
    "DB_NAME",
    "DEFAULT_QUEUE_SIZE",
    "GENESIS_HASH",
    "AuditError",
    "AuditLog",
    "AuditUnavailable",
    "canonical_json",
    "db_path",
    "open_audit_log",
    "row_hash",
]
