"""What the admin API needs of the gateway, and how an admin action is recorded.

`AdminHost` is the gateway as the handlers see it (`kt_trio.server.gateway.Gateway` satisfies it):
its live sessions, key store, packs, audit log and reporter. The handlers never reach further in.

`record_action` makes every admin action an `AdminAction` record: a log line, a `system` event
`admin_action` on `/ws/events` (through the gateway's reporter, which also feeds metrics), and an
audit record (kind `admin`) when the audit log is on. Only names go in: the admin key's name, a
session id, a key's name and prefix; never a key, token or config secret.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Protocol

from kt_trio.audit.entries import AuditError
from kt_trio.records import AdminAction

if TYPE_CHECKING:
    from kt_trio.config.schema import GatewayConfig
    from kt_trio.keys import KeyRing
    from kt_trio.reporting import AuditSink, Reporter
    from kt_trio.server.packs import PackRuntime
    from kt_trio.session.session import Session
    from kt_trio.state.base import SharedState

log = logging.getLogger("kt_trio.admin")

Detail = str | int | float | bool | None


class AdminHost(Protocol):
    @property
    def config(self) -> GatewayConfig: ...

    @property
    def sessions(self) -> Collection[Session]: ...

    @property
    def keys(self) -> KeyRing | None: ...

    @property
    def audit(self) -> AuditSink | None: ...

    @property
    def reporter(self) -> Reporter: ...

    @property
    def packs(self) -> Mapping[str, PackRuntime]: ...

    @property
    def state(self) -> SharedState: ...


async def record_action(host: AdminHost, admin: str, action: str, target: str | None, **details: Detail) -> None:
    """Logs, publishes and audits one admin action (see the module docstring)."""
    record = AdminAction(action=action, admin=admin, target=target, details=details)
    log.info("admin action", extra={"fields": {"action": action, "admin": admin, "target": target, **details}})
    host.reporter.emit(None, record)
    audit = host.audit
    if audit is not None:
        try:
            await audit.write_many(None, [record])
        except AuditError as exc:  # the store is failing: the action stands, the log line says so
            log.warning("admin action %s by %s not audited: %s", action, admin, exc)
