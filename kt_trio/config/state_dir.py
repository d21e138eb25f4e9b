"""Where the gateway keeps its stores, for commands that read them (`audit`, `keys`).

`--state-dir D` names it; `--config FILE` reads `gateway.state_dir` and `store.*` (SQLite files in
the state dir, or PostgreSQL) from the gateway's config; neither means the schema's default
(`./.kt_trio`, DESIGN.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import attrs

from kt_trio.config.errors import ConfigError
from kt_trio.config.loader import load_config
from kt_trio.config.schema import Gateway, Store

DEFAULT_STATE_DIR: str = str(attrs.fields(Gateway).state_dir.default)


def state_dir_parser() -> argparse.ArgumentParser:
    """A parent parser with `--state-dir` / `--config`, for each subcommand that reads a store."""
    where = argparse.ArgumentParser(add_help=False)
    group = where.add_mutually_exclusive_group()
    group.add_argument("--state-dir", help=f"the gateway's state_dir (default {DEFAULT_STATE_DIR})")
    group.add_argument(
        "--config",
        "--policy-config",
        dest="config",
        help="the gateway's config: read gateway.state_dir and store.* (SQLite or PostgreSQL) from it",
    )
    return where


def resolve_state_dir(args: argparse.Namespace) -> Path | None:
    """The state dir the arguments name; None after printing the config's errors."""
    found = resolve_store(args)
    return None if found is None else found[0]


def resolve_store(args: argparse.Namespace) -> tuple[Path, Store] | None:
    """(state dir, `store.*`) the arguments name; None after printing the config's errors."""
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            for issue in exc.issues:
                print(issue, file=sys.stderr)
            return None
        return Path(config.gateway.state_dir), config.store
    return Path(args.state_dir or DEFAULT_STATE_DIR), Store()
