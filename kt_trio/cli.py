"""The command line: `serve`, `validate`, `chat`, `keys`, `audit`, `reload`. Thin: each command calls into the package.

Keeptrusts users' names work too: `gateway run` is `serve`, `gateway-key create` is `keys create`
(`--configuration-id` is `--pack`)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import attrs
import trio

from kt_trio.admin.cli import add_sessions_commands
from kt_trio.audit.cli import add_audit_commands
from kt_trio.config import ConfigError, GatewayConfig, resolve_secrets, summarize
from kt_trio.config.packs import load_packs
from kt_trio.config.schema import GatewayTls
from kt_trio.keys.cli import add_keys_commands
from kt_trio.logs import setup_logging
from kt_trio.postgres import PostgresError
from kt_trio.reload_cli import add_reload_command
from kt_trio.server.tls import TlsSetupError, server_context

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 41002
EXIT_CONFIG = 2
EXIT_STORE = 1  # a configured store could not be opened


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what `serve --workers` hands its workers
    if args.command is None:
        parser.print_help()
        return EXIT_CONFIG
    return int(args.func(args) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kt_trio", description="A governed gateway for real-time LLM APIs.")
    sub = parser.add_subparsers(dest="command")

    # `serve`'s options live on a parent parser so Keeptrusts' `gateway run` takes every one of them.
    serve_args = argparse.ArgumentParser(add_help=False)
    serve_args.add_argument(
        "--config",
        "--policy-config",
        dest="config",
        action="append",
        help="config file (.yaml or .toml) or a directory of them; repeat for several packs (the first is the default)",
    )
    serve_args.add_argument("--host", default=DEFAULT_HOST)
    serve_args.add_argument("--certfile", help="TLS certificate (PEM) for wss:// and https:// (gateway.tls.certfile)")
    serve_args.add_argument("--keyfile", help="its private key (PEM) (gateway.tls.keyfile)")
    serve_args.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve_args.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve_args.add_argument("--log-format", default="text", choices=["text", "json"])
    serve_args.add_argument(
        "--workers", type=int, help="processes sharing the port (default: gateway.workers); needs state.backend: redis"
    )
    serve_args.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # set by the supervisor
    serve_args.add_argument("--watch", action="store_true", help="reload when a config file changes (polled)")
    serve = sub.add_parser("serve", parents=[serve_args], help="run the gateway (demo mode with no --config)")
    serve.set_defaults(func=_serve)
    gateway = sub.add_parser("gateway", help="Keeptrusts' name: `gateway run` is `serve`")
    gateway_commands = gateway.add_subparsers(dest="gateway_command", required=True)
    run = gateway_commands.add_parser("run", parents=[serve_args], help="the same as `serve`")
    run.set_defaults(func=_serve)

    validate = sub.add_parser("validate", help="check config files (each one a pack)")
    validate.add_argument("file", nargs="+", help="config files or directories, as for serve --config")
    validate.set_defaults(func=_validate)

    chat = sub.add_parser("chat", help="send one message through a gateway and print the response")
    chat.add_argument("text", nargs="?", default="Hello! What can you do?")
    chat.add_argument("--url", default=f"ws://{DEFAULT_HOST}:{DEFAULT_PORT}/v1/realtime?model=gpt-realtime")
    chat.add_argument("--key", help="a gateway key (sent as Authorization: Bearer)")
    chat.add_argument("--timeout", type=float, default=30.0)
    chat.set_defaults(func=_chat)
    conformance = sub.add_parser(
        "conformance", help="run the repository's conformance scenarios (conformance/) against a gateway"
    )
    conformance.add_argument("--gateway", required=True, help="the gateway's base URL, e.g. ws://127.0.0.1:41002")
    conformance.add_argument("--mock-port", type=int, default=41003, help="port for the suite's mock provider")
    conformance.add_argument("--key", help="a gateway key, when the gateway requires keys")
    conformance.add_argument("--model", help="the ?model= that routes to the mock's target")
    conformance.add_argument("--skip", default="", help="comma-separated tags to skip: policies, limits")
    conformance.set_defaults(func=_conformance)
    add_audit_commands(sub)
    add_keys_commands(sub)
    add_sessions_commands(sub)
    add_reload_command(sub)
    return parser


def _conformance(args: argparse.Namespace) -> int:
    """The scenario suite lives in the repository's `conformance/` (the wheel installs only
    `kt_trio`); found on the path, or beside this package in a checkout."""
    try:
        from conformance.scenarios import main as run_scenarios
    except ImportError:
        checkout = Path(__file__).resolve().parent.parent
        if not (checkout / "conformance" / "scenarios.py").is_file():
            print(
                "conformance: the scenario suite is the kt_trio repository's conformance/ directory;"
                " run this from a checkout (or put it on PYTHONPATH)",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        sys.path.insert(0, str(checkout))
        from conformance.scenarios import main as run_scenarios
    argv = ["--gateway", args.gateway, "--mock-port", str(args.mock_port), "--skip", args.skip]
    for flag, value in (("--key", args.key), ("--model", args.model)):
        if value:
            argv += [flag, value]
    return run_scenarios(argv)


def _validate(args: argparse.Namespace) -> int:
    try:
        packs = load_packs(args.file)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return EXIT_CONFIG
    for config in packs:
        where = config.origin.file if config.origin is not None else args.file[0]
        print(f"{where}: {summarize(config)}")
    return 0


def _chat(args: argparse.Namespace) -> int:
    from kt_trio.chat_client import chat

    return trio.run(partial(chat, args.url, args.text, key=args.key, timeout=args.timeout))


def _serve(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, args.log_format)
    packs: list[tuple[GatewayConfig, dict[str, str]]] = []
    if args.config:
        try:
            configs = load_packs(args.config)
            packs = [(config, resolve_secrets(config)) for config in configs]
        except ConfigError as exc:
            for issue in exc.issues:
                print(issue, file=sys.stderr)
            return EXIT_CONFIG
    tls: dict[str, str | None] | None = None
    if args.certfile or args.keyfile:
        tls = {"certfile": args.certfile, "keyfile": args.keyfile}
        packs = [(_with_tls(config, tls) if i == 0 else config, sec) for i, (config, sec) in enumerate(packs)]
    try:  # the certificate and key are loaded now, so a bad file is a config error, not a traceback
        server_context(packs[0][0].gateway.tls if packs else GatewayTls(**(tls or {})))
    except TlsSetupError as exc:
        print(f"tls: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    workers = args.workers or (packs[0][0].gateway.workers if packs else 1)
    if workers > 1 and not args.worker:
        return _supervise(args, packs, workers)
    unreachable: list[BaseException] = []
    try:
        trio.run(_run_gateway, packs, args.host, args.port, args.worker, tls, args.config or [], args.watch)
    except* PostgresError as group:  # store.backend postgres unreachable at start: say so, no traceback
        unreachable.extend(_leaves(group))
    for error in unreachable:
        print(f"kt_trio: {error}", file=sys.stderr)
    return EXIT_STORE if unreachable else 0


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _with_tls(config: GatewayConfig, tls: dict[str, str | None]) -> GatewayConfig:
    """`serve --certfile/--keyfile` over the default pack's `gateway.tls`."""
    given = {k: v for k, v in tls.items() if v}
    return attrs.evolve(config, gateway=attrs.evolve(config.gateway, tls=attrs.evolve(config.gateway.tls, **given)))


def _supervise(args: argparse.Namespace, packs: list[tuple[GatewayConfig, dict[str, str]]], workers: int) -> int:
    from kt_trio.server.supervisor import embedded_refusal, supervise

    if not packs or packs[0][0].state.backend != "redis":
        print(f"kt_trio: {embedded_refusal(workers)}", file=sys.stderr)
        return EXIT_CONFIG
    config = packs[0][0]
    return supervise(args.argv, workers, args.host, args.port, config.gateway.shutdown_timeout_secs)


async def _run_gateway(
    packs: list[tuple[GatewayConfig, dict[str, str]]],
    host: str,
    port: int,
    reuse_port: bool = False,
    tls: dict[str, str | None] | None = None,
    config_paths: Sequence[str] = (),
    watch: bool = False,
) -> None:
    from kt_trio.demo import DEMO_MODEL, demo_config
    from kt_trio.mocks.realtime import MockBehaviour
    from kt_trio.server.gateway import Gateway
    from kt_trio.server.reload_triggers import attach_reloader, on_sighup

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as helpers:  # the demo's mock provider, when there is one
            mock_url = None
            if packs:
                (config, secrets), more_packs = packs[0], packs[1:]
            else:
                mock_url = await helpers.start(_run_mock, MockBehaviour())
                config, secrets, more_packs = demo_config(mock_url), {}, []
                if tls:
                    config = _with_tls(config, tls)
            gateway = Gateway(config, secrets=secrets, more_packs=more_packs)
            adjust = partial(_with_tls, tls=tls) if tls else None  # --certfile/--keyfile over each reload too
            await attach_reloader(gateway, config_paths, worker=reuse_port, watch=watch, nursery=helpers, adjust=adjust)
            if reuse_port:  # a worker of `serve --workers`
                from kt_trio.server.supervisor import drain_when_orphaned

                helpers.start_soon(drain_when_orphaned)
            ws = "wss" if config.gateway.tls.certfile else "ws"
            http = "https" if config.gateway.tls.certfile else "http"
            async with trio.open_nursery() as serving:
                bound = await serving.start(partial(gateway.serve, reuse_port=reuse_port), host, port)
                if mock_url is not None:
                    url = f"{ws}://{host}:{bound}/v1/realtime?model={DEMO_MODEL}"
                    print(f"kt_trio demo mode: gateway on {ws}://{host}:{bound}, mock Realtime provider on {mock_url}")
                    print(f"  connect to:  {url}")
                    print(f"  try it:      python -m kt_trio chat --url '{url}' 'My phone is 415-555-0132'")
                else:
                    names = ", ".join(gateway.packs)
                    noun = "pack" if len(gateway.packs) == 1 else "packs"
                    print(
                        f"kt_trio serving {noun} {names} on {ws}://{host}:{bound} (health: {http}://{host}:{bound}/healthz)"
                    )
                sys.stdout.flush()
                async for signum in signals:
                    if signum == signal.SIGHUP:  # reload the config files (kt_trio.server.reload)
                        serving.start_soon(on_sighup, gateway)
                        continue
                    logging.getLogger("kt_trio").info("%s: draining sessions", signal.Signals(signum).name)
                    gateway.shutdown()
                    break
            # gateway.serve returned: every session is closed (or the shutdown timeout passed).
            helpers.cancel_scope.cancel()


async def _run_mock(behaviour: object, *, task_status: trio.TaskStatus[str]) -> None:
    from kt_trio.mocks.realtime import open_mock_upstream

    async with open_mock_upstream(behaviour) as mock:  # type: ignore[arg-type]
        task_status.started(mock.url)
        await trio.sleep_forever()
