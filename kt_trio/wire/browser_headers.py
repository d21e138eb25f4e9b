"""What a browser's request says about itself: its cookies and whether its `Origin` is the
gateway's own. Shared by the admin API (the console's login) and `/ws/events`, which accept the
same cookie under the same Origin rule."""

from __future__ import annotations

from collections.abc import Sequence
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit


def cookie(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    """The value of cookie `name` in the request's `Cookie` headers (lower-cased header names).
    A header the cookie parser rejects is skipped, not an error: it may carry someone else's."""
    for key, value in headers:
        if key != "cookie":
            continue
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(value)
        except CookieError:
            continue
        if name in jar:
            return jar[name].value
    return None


def is_own_origin(origin: str, host: str | None) -> bool:
    """True when `origin` names the host and port the request was sent to (the `Host` header):
    a page this gateway served. `null` and anything unparsable are foreign."""
    try:
        netloc = urlsplit(origin.strip()).netloc.lower()
    except ValueError:
        return False
    return bool(netloc) and host is not None and netloc == host.strip().lower()
