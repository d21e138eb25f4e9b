"""Serving the console's files: a fixed set read once from the package, strict headers.

Why each header:
- `Content-Security-Policy`: scripts, styles, images and connections from this origin only, no
  inline script or style, no plugins, no framing, no `<base>` rewriting, forms only to us. The page
  renders data that clients and providers chose (model names, key names, reasons); with no inline
  script allowed, a string that slipped into the DOM as markup still could not run.
- `X-Content-Type-Options: nosniff`: a module is only ever run as the type we say it is.
- `Cache-Control: no-store` on the HTML (it decides which scripts run, and a cached page would
  survive an upgrade); `no-cache` plus an `ETag` on the assets, so they revalidate cheaply.
- `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY` (older browsers' frame-ancestors),
  `Cross-Origin-Opener-Policy`/`-Resource-Policy: same-origin`: nothing about the console leaks to
  or is embedded by another site.

Only names listed in `ASSETS` are served (no path from the URL ever reaches the file system), and
only for GET and HEAD; other methods under `/console/` (the login) belong to the admin API.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, MutableMapping
from functools import cache
from importlib import resources
from typing import Any

Scope = MutableMapping[str, Any]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

CONSOLE_PATH = "/console"
ASSET_PREFIX = "/console/assets/"

# The files under kt_trio/console/assets and the type each is served as.
ASSETS: dict[str, bytes] = {
    "console.css": b"text/css; charset=utf-8",
    "app.js": b"text/javascript; charset=utf-8",
    "api.js": b"text/javascript; charset=utf-8",
    "stream.js": b"text/javascript; charset=utf-8",
    "state.js": b"text/javascript; charset=utf-8",
    "view.js": b"text/javascript; charset=utf-8",
    "dom.js": b"text/javascript; charset=utf-8",
    "favicon.svg": b"image/svg+xml",
}
PAGE = "index.html"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
_COMMON_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def handles(scope: Scope) -> bool:
    """A GET or HEAD for the page or one of its assets (anything else under /console is not ours)."""
    if scope.get("method") not in ("GET", "HEAD"):
        return False
    path = scope.get("path", "")
    return path in (CONSOLE_PATH, CONSOLE_PATH + "/") or path.startswith(ASSET_PREFIX)


@cache
def _file(name: str) -> tuple[bytes, bytes]:
    """The file's bytes and its ETag, read once per process (the whole console is ~40 KiB)."""
    data = resources.files("kt_trio.console").joinpath("assets", name).read_bytes()
    return data, b'"' + hashlib.sha256(data).hexdigest()[:20].encode() + b'"'


async def serve_console(scope: Scope, send: Send) -> None:
    """Answers a request `handles` accepted."""
    path = scope["path"]
    if path.startswith(ASSET_PREFIX):
        name = path[len(ASSET_PREFIX) :]
        content_type = ASSETS.get(name)
        if content_type is None:
            not_found = b"not found\n"
            await _answer(scope, send, 404, b"text/plain; charset=utf-8", not_found, [(b"cache-control", b"no-store")])
            return
        data, etag = _file(name)
        cache_headers = [(b"cache-control", b"no-cache"), (b"etag", etag)]
        if etag in _if_none_match(scope):
            await _answer(scope, send, 304, content_type, b"", cache_headers)
            return
        await _answer(scope, send, 200, content_type, data, cache_headers)
        return
    data, _ = _file(PAGE)
    await _answer(scope, send, 200, b"text/html; charset=utf-8", data, [(b"cache-control", b"no-store")])


def _if_none_match(scope: Scope) -> list[bytes]:
    for key, value in scope.get("headers", ()):
        if key.lower() == b"if-none-match":
            return [v.strip() for v in bytes(value).split(b",")]
    return []


async def _answer(
    scope: Scope, send: Send, status: int, content_type: bytes, body: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [(b"content-type", content_type), *_COMMON_HEADERS, *extra]
    if status != 304:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" or status == 304 else body})
