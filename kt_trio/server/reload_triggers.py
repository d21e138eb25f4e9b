"""What starts a config reload: SIGHUP, `serve --watch`, and `POST /admin/reload`.

`serve` (kt_trio.cli) attaches a `Reloader` when it was given config files and calls `on_sighup`
for each SIGHUP; `POST /admin/reload` (`add_reload_route`) calls `admin_reload`. Demo mode (no
`--config`) has nothing to reload: SIGHUP is logged and ignored there, and the admin route
answers `rejected`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from kt_trio.admin.host import record_action
from kt_trio.admin.router import AdminApp, AdminRequest, Answer
from kt_trio.config.schema import GatewayConfig
from kt_trio.server.config_watch import watch_config
from kt_trio.server.reload import Reloader, ReloadOutcome

if TYPE_CHECKING:
    from kt_trio.server.gateway import Gateway

log = logging.getLogger("kt_trio.reload")

# `POST /admin/reload` answers 200 for a reload, 422 for a config it rejected: the request was
# well formed, the files on the gateway's disk are not (the body names every error).
REJECTED_STATUS = 422


async def attach_reloader(
    gateway: Gateway,
    paths: Sequence[str],
    *,
    worker: bool,
    watch: bool,
    nursery: trio.Nursery,
    adjust: Callable[[GatewayConfig], GatewayConfig] | None = None,
) -> None:
    """Gives `gateway` its reloader (config files only) and, with `watch`, starts polling them."""
    if not paths:
        if watch:
            log.warning("serve --watch: no config files to watch (demo mode)")
        return
    gateway.reloader = Reloader(gateway, paths, worker=worker, adjust=adjust)
    if watch:
        await nursery.start(watch_config, gateway.reloader)


async def on_sighup(gateway: Gateway) -> None:
    if gateway.reloader is None:
        log.warning("SIGHUP: no config files to reload (demo mode)")
        return
    log.info("SIGHUP: reloading %s", ", ".join(gateway.reloader.paths))
    await gateway.reloader.reload("SIGHUP")


def add_reload_route(app: AdminApp, gateway: Gateway) -> None:
    """`POST /admin/reload` on the admin API (an admin key, or the console's login)."""

    async def reload(request: AdminRequest) -> Answer:
        status, body = await admin_reload(gateway)
        assert request.admin is not None  # the router let an admin through
        details = {"status": body["status"], "errors": len(body["errors"])}
        await record_action(gateway, request.admin.key.name, "config_reload", None, **details)
        return Answer(status, body)

    app.register("POST", "/admin/reload", reload)


async def admin_reload(gateway: Gateway) -> tuple[int, dict[str, Any]]:
    """`POST /admin/reload`: (HTTP status, JSON body) as DESIGN.md "Operating it live" has it."""
    reloader = gateway.reloader
    if reloader is None:
        reloader = gateway.reloader = Reloader(gateway, ())  # demo mode: answers why it cannot
    outcome = await reloader.reload_everywhere("admin")
    return answer(outcome)


def answer(outcome: ReloadOutcome) -> tuple[int, dict[str, Any]]:
    body = outcome.as_json()
    if outcome.ok:
        return 200, body
    message = "the config files are invalid; the running config is unchanged: " + "; ".join(outcome.errors)
    body["error"] = {"type": "invalid_request_error", "code": "config_rejected", "message": message, "param": None}
    return REJECTED_STATUS, body
