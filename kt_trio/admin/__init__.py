"""The admin API (DESIGN.md "Operating it live"): sessions, keys, the active config, and the
console's login, on the gateway's own port, for keys with the `admin` scope. See docs/admin.md.

- `auth`: who may (an admin key in a header, or the console's login cookie with the Origin rule);
- `router`: the ASGI app, its routes and `AdminApp.register` for other modules' routes;
- `host`: what the handlers need of the gateway, and `record_action` (log, event, audit);
- `sessions`, `keys`, `config_view`, `login`: the handlers; `app.build_admin` puts them together;
- `client`, `cli`: the command line's side (`kt_trio sessions ...`, `kt_trio keys ... --url`).

This package file imports nothing, so the command line's client does not load the server.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # `from kt_trio.admin import build_admin` keeps working, loading the server side only then.
    if name == "build_admin":
        from kt_trio.admin.app import build_admin

        return build_admin
    raise AttributeError(name)
