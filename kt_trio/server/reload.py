"""Reloading the config under live sessions (issue 17, DESIGN.md "Operating it live").

`Reloader.reload` reads the files the gateway was started with (`--config FILE`, repeated, or a
pack directory) and validates them exactly as `serve` does at start (schema, packs, secrets in
the environment, policy construction). Only then, with no `await` between the first and the
last assignment (so no task sees half of it), the gateway's packs, default config, price table
and admission limits are replaced:

- New sessions and requests pick their pack (`Gateway.pack_for`) after the swap and get the new
  chain, targets, settings and limits. An open session holds the `PackRuntime` it started with
  (its chain, its per-connection limiter, its guardrail), so nothing about it changes.
- What must survive is not rebuilt: the per-IP and per-key slot counters (the `Admission` object
  stays; only its limit is replaced, so a lowered limit refuses new sessions while the ones
  already open keep their slots), per-key rate buckets and budgets (`gateway.state`), the event
  hub, the metrics registry, the audit writer and the key store. A pack keeps its
  `UpstreamHealth` across reloads: the breaker of every target id that still exists keeps its
  state (open stays open); its thresholds take the new values.
- A pack's HTTP connection pool is handed to its new `ChatApp`; a guardrail pool is reused while
  its settings are unchanged. A pool that is replaced (a removed pack, a changed guardrail) may
  still serve open sessions, so it is closed once no session or request started before the
  reload can still be running (the longest `max_session_secs` plus the HTTP request timeout),
  or at shutdown.

An invalid config changes nothing: every issue is logged as `FILE:LINE:COL: path: message` and a
`system` event `config_rejected` lists them. A valid one gives `config_reloaded`; settings that
need a restart (`reload_settings.RESTART_SETTINGS`) keep their old values and are named in a
warning, in the event and in the answer to `POST /admin/reload`.

With `serve --workers N` the supervisor forwards SIGHUP to every worker and each worker polls the
files itself for `--watch`. `POST /admin/reload` reaches one worker: it validates, then asks the
supervisor (SIGHUP to its parent) to reload every worker, and answers once its own reload is done.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import trio
from attrs import frozen

from kt_trio.config import ConfigError, ConfigIssue, GatewayConfig, resolve_secrets
from kt_trio.config.packs import gateway_wide_differences, load_packs, with_gateway_settings_of
from kt_trio.config.schema import ExternalGuardrailSettings
from kt_trio.events.messages import SystemEvent
from kt_trio.guardrail.client import Guardrail
from kt_trio.pricing import Pricing
from kt_trio.server.packs import GUARDRAIL, PackRuntime
from kt_trio.server.reload_settings import audit_restart_required, keep_restart_settings, restart_required

if TYPE_CHECKING:
    from kt_trio.server.gateway import Gateway

log = logging.getLogger("kt_trio.reload")

# A request started before a reload may still be using a replaced pool for this long past the
# longest session (chat's upstream read timeout, `kt_trio.chat.upstream.default_http_client`).
HTTP_REQUEST_SECS = 300.0
# How long `POST /admin/reload` on a worker waits for the supervisor's SIGHUP to come back.
WORKER_RELOAD_WAIT_SECS = 5.0

Loaded = list[tuple[GatewayConfig, dict[str, str]]]


@frozen
class ReloadOutcome:
    """What a reload did: the body of `POST /admin/reload` and of the `system` event."""

    status: Literal["reloaded", "rejected"]
    errors: tuple[str, ...] = ()
    restart_required: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "reloaded"

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "errors": list(self.errors), "restart_required": list(self.restart_required)}


@frozen
class _Retired:
    """A pool an open session or request may still use: closed after `close_at`."""

    close_at: float
    aclose: Callable[[], Awaitable[None]]


class Reloader:
    """Reloads `gateway` from `paths` (files or pack directories, as `serve --config` took them)."""

    def __init__(
        self,
        gateway: Gateway,
        paths: Sequence[str],
        *,
        environ: Mapping[str, str] | None = None,
        worker: bool = False,
        adjust: Callable[[GatewayConfig], GatewayConfig] | None = None,
    ) -> None:
        """`adjust`: what `serve` did to the default pack after loading it (`--certfile`), done
        again to each reloaded one so it is not taken for a change."""
        self.gateway = gateway
        self.paths = list(paths)
        self.environ = environ
        self.adjust = adjust
        # `serve --workers`: an admin reload asks the supervisor to reload every worker.
        self.worker = worker
        self.generation = 0  # successful reloads so far
        self.attempts = 0  # reloads done, whatever their outcome
        self.last: ReloadOutcome | None = None
        self._done = trio.Event()
        self._lock = trio.Lock()  # one reload at a time, whatever triggered it
        self._retired: list[_Retired] = []

    # -- triggers ---------------------------------------------------------------------------------

    async def reload(self, trigger: str) -> ReloadOutcome:
        """Validate the files and swap them in, or change nothing and say why."""
        async with self._lock:
            try:
                outcome = await self._reload(trigger)
            except Exception as exc:
                # A bug must not take the gateway down with it: the running config stays.
                log.exception("config reload failed")
                issue = ConfigIssue(self.paths[0] if self.paths else "<demo>", 1, 1, "", f"reload failed: {exc!r}")
                outcome = await self._reject(trigger, [issue])
            self.last = outcome
            self.attempts += 1
            self.generation += outcome.ok
            self._done.set()
            self._done = trio.Event()
            return outcome

    async def reload_everywhere(self, trigger: str) -> ReloadOutcome:
        """`POST /admin/reload`: this process, or under `serve --workers` every worker (the
        supervisor forwards SIGHUP to each); answers with this worker's own outcome."""
        if not self.worker or not self.paths:
            return await self.reload(trigger)
        problems = await self._validate_only()
        if problems is not None:
            return await self._reject(trigger, problems)
        before = self.attempts
        os.kill(os.getppid(), signal.SIGHUP)
        with trio.move_on_after(WORKER_RELOAD_WAIT_SECS):
            while self.attempts == before:
                await self._done.wait()
            assert self.last is not None
            return self.last
        log.warning("the supervisor did not pass the reload on; reloading this worker only")
        return await self.reload(trigger)

    # -- the reload -------------------------------------------------------------------------------

    async def _reload(self, trigger: str) -> ReloadOutcome:
        if not self.paths:
            issue = ConfigIssue("<demo>", 1, 1, "", "no config files to reload: the gateway runs in demo mode")
            return await self._reject(trigger, [issue])
        try:
            loaded = await trio.to_thread.run_sync(self._load)
        except ConfigError as exc:
            return await self._reject(trigger, list(exc.issues))
        gw = self.gateway
        old_default = gw.config
        new_default, secrets = loaded[0]
        if self.adjust is not None:
            new_default = self.adjust(new_default)
        restart = restart_required(old_default, new_default)
        new_default = keep_restart_settings(old_default, new_default, restart)
        configs = [(new_default, secrets)]
        for config, pack_secrets in loaded[1:]:
            for section in gateway_wide_differences(new_default, config):
                log.warning(
                    "pack %s sets %s differently from the default pack %s: the default pack's value is used",
                    config.pack.name,
                    section,
                    new_default.pack.name,
                )
            configs.append((with_gateway_settings_of(new_default, config), pack_secrets))
        restart += audit_restart_required(
            (p.config for p in gw.packs.values()), (c for c, _ in configs), gw.audit is not None
        )
        try:
            pricing, packs = self._build(configs)
        except (ValueError, ConfigError) as exc:
            issues = list(exc.issues) if isinstance(exc, ConfigError) else [_build_issue(new_default, exc)]
            return await self._reject(trigger, issues)
        retired = self._swap(new_default, pricing, packs)
        now = trio.current_time()
        self._retired.extend(_Retired(now + _longest_life(old), close) for old, close in retired)
        await self._close_retired(now)
        for path in restart:
            log.warning("config reload: %s needs a restart to change; its old value is kept", path)
        outcome = ReloadOutcome("reloaded", restart_required=tuple(restart))
        details: dict[str, Any] = {
            "trigger": trigger,
            "pid": os.getpid(),  # which worker, under `serve --workers`
            "pack": new_default.pack.name,
            "packs": ",".join(packs),
            "restart_required": outcome.restart_required,
        }
        log.info("config reloaded", extra={"fields": {k: v for k, v in details.items() if k != "restart_required"}})
        gw.hub.publish(None, SystemEvent("config_reloaded", details))
        return outcome

    def _load(self) -> Loaded:
        """Every pack with its secrets, or one `ConfigError` naming every problem (in a thread:
        it reads files)."""
        configs = load_packs(self.paths, self.environ)
        loaded: Loaded = []
        issues: list[ConfigIssue] = []
        for config in configs:
            try:
                loaded.append((config, resolve_secrets(config, self.environ)))
            except ConfigError as exc:
                issues.extend(exc.issues)
        if issues:
            raise ConfigError(issues)
        return loaded

    async def _validate_only(self) -> list[ConfigIssue] | None:
        try:
            await trio.to_thread.run_sync(self._load)
        except ConfigError as exc:
            return list(exc.issues)
        return None

    def _build(self, configs: Loaded) -> tuple[Pricing, dict[str, PackRuntime]]:
        """The new packs, reusing each surviving pack's breakers and pools. Nothing of the
        gateway is changed here, so a failure leaves it as it was."""
        gw = self.gateway
        default = configs[0][0]
        pricing = Pricing(default.pricing, on_unpriced=gw._unpriced)
        pricing.unpriced = gw.pricing.unpriced  # a model already reported is not reported again
        hooks = {**gw.chat_hooks, "pricing": pricing}
        packs: dict[str, PackRuntime] = {}
        for config, secrets in configs:
            old = gw.packs.get(config.pack.name)
            extra: dict[str, Any] = {}
            if old is not None:
                client = old.chat.client  # one pool per pack for the life of the process
                extra["http_client_factory"] = lambda client=client: client
            packs[config.pack.name] = PackRuntime.build(
                config,
                secrets,
                gw.reporter.emit,
                health=self._health_for(config, old),
                guardrail=_same_guardrail(config, old),
                **hooks,
                **extra,
            )
        return pricing, packs

    def _health_for(self, config: GatewayConfig, old: PackRuntime | None) -> Any:
        if old is None:
            return None  # a new pack: fresh breakers (bound to the shared state on swap)
        breaker = config.providers.circuit_breaker
        old.health.reconfigure(
            breaker.failure_threshold, breaker.recovery_timeout_secs, (t.id for t in config.providers.targets)
        )
        return old.health

    def _swap(
        self, default: GatewayConfig, pricing: Pricing, packs: dict[str, PackRuntime]
    ) -> list[tuple[PackRuntime, Callable[[], Awaitable[None]]]]:
        """Makes the new config the gateway's: no `await` in here, so it is atomic for every task.
        Returns the pools the old packs held that the new ones do not (to close later)."""
        gw = self.gateway
        old_packs = gw.packs
        for name, pack in packs.items():
            if name not in old_packs:
                gw.state.bind_health(pack.health, name)
        gw.metrics.add_configs(*(p.config for p in packs.values()))
        gw.admission.reconfigure(default.providers.rate_limit.per_ip.connections, default.gateway.trusted_proxies)
        gw.config = default
        gw.pricing = pricing
        gw.packs = packs
        gw.default_pack = next(iter(packs.values()))
        retired: list[tuple[PackRuntime, Callable[[], Awaitable[None]]]] = []
        for name, old in old_packs.items():
            new = packs.get(name)
            if new is None:
                retired.append((old, old.chat.aclose))
            if old.guardrail is not None and (new is None or new.guardrail is not old.guardrail):
                retired.append((old, old.guardrail.aclose))
        return retired

    async def _reject(self, trigger: str, issues: Sequence[ConfigIssue]) -> ReloadOutcome:
        errors = tuple(str(issue) for issue in issues)
        for error in errors:
            log.error("%s", error)
        log.error("config reload rejected (%s): %d error(s); the running config is unchanged", trigger, len(errors))
        details: dict[str, Any] = {"trigger": trigger, "pid": os.getpid(), "errors": errors}
        self.gateway.hub.publish(None, SystemEvent("config_rejected", details))
        return ReloadOutcome("rejected", errors=errors)

    # -- replaced pools -----------------------------------------------------------------------------

    async def _close_retired(self, now: float) -> None:
        due = [r for r in self._retired if r.close_at <= now]
        self._retired = [r for r in self._retired if r.close_at > now]
        for retired in due:
            await retired.aclose()

    async def aclose(self) -> None:
        """At shutdown, after the sessions: every replaced pool still open."""
        retired, self._retired = self._retired, []
        for r in retired:
            await r.aclose()


def _same_guardrail(config: GatewayConfig, old: PackRuntime | None) -> Guardrail | None:
    """The old pack's guardrail pool when the new chain still runs it with the same settings."""
    if old is None or old.guardrail is None or GUARDRAIL not in config.policies.chain:
        return None
    settings = config.policy_settings(GUARDRAIL)
    if not isinstance(settings, ExternalGuardrailSettings) or settings != old.guardrail.settings:
        return None
    return old.guardrail


def _longest_life(pack: PackRuntime) -> float:
    """How long a session or request that started under `pack` can still be running."""
    config = pack.config
    longest = max(
        (config.session_settings(t).max_session_secs for t in config.providers.targets),
        default=config.gateway.websocket.max_session_secs,
    )
    return longest + HTTP_REQUEST_SECS


def _build_issue(config: GatewayConfig, exc: Exception) -> ConfigIssue:
    file = config.origin.file if config.origin is not None else "<config>"
    return ConfigIssue(file, 1, 1, "", str(exc))
