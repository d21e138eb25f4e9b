"""Request targets made safe to route on (pure): one spelling of each path, and no repeated
routing parameters.

A gateway that routes on one spelling of a path while the provider resolves another is a way
around the routing: `/v1/../admin` matched no gateway route but reached the provider's `/admin`
with the target's key (issue 13). So the path is normalised before anything routes on it, and
the normalised path is what goes on: `.` and `..` segments are resolved (also when written
`%2e`), `//` collapses, a backslash (or `%5c`) is a `/` as browsers read it, and an encoded
`/` (`%2f`) is decoded, since no route or provider path legitimately carries one. A `..` above
the root is refused (400), not clamped: the request is malformed, not merely unusual.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

# Percent-escapes that change how a path splits into segments, decoded before splitting.
_SPLITTING = re.compile(r"%(2[eEfF]|5[cC])")
_DECODED = {"2e": ".", "2f": "/", "5c": "/"}
# Query parameters that choose the target or the deployment: one value each, or the gateway and
# the provider might each read a different one.
ROUTING_PARAMS = frozenset({"model", "deployment", "api-version"})


# Query parameters a provider reads that a client must not steer past the gateway: a key in the
# URL would reach the provider beside the target's own credential, and Azure's routing parameters
# mean something only on Azure's own paths (`/openai/...`, which the gateway maps itself).
CREDENTIAL_PARAMS = frozenset({"api-key", "api_key", "key", "access_token", "authorization"})
AZURE_ROUTING_PARAMS = frozenset({"deployment", "api-version"})


class PathEscapes(ValueError):
    """The path climbs above the root with `..`."""


def normal_path(path: str) -> str:
    """The path with dot segments resolved and separators made one; raises `PathEscapes`."""
    if "%" not in path and "\\" not in path and "/." not in path and "//" not in path:
        return path  # the common case, already normal
    text = _SPLITTING.sub(lambda m: _DECODED[m.group(1).lower()], path).replace("\\", "/")
    segments: list[str] = []
    for seg in text.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if not segments:
                raise PathEscapes(path)
            segments.pop()
            continue
        segments.append(seg)
    out = "/" + "/".join(segments)
    if segments and (text.endswith("/") or text.endswith("/.") or text.endswith("/..")):
        out += "/"
    return out


def repeated_routing_param(query: str) -> str | None:
    """The first routing parameter given more than once, else None."""
    if not query:
        return None
    seen: set[str] = set()
    for name, _ in parse_qsl(query, keep_blank_values=True):
        if name in ROUTING_PARAMS:
            if name in seen:
                return name
            seen.add(name)
    return None


def reserved_param(path: str, query: str) -> str | None:
    """The first provider-reserved parameter `path` must not carry (a credential anywhere, Azure's
    routing parameters outside `/openai/`), else None."""
    if not query:
        return None
    azure_path = path.startswith("/openai/")
    for name, _ in parse_qsl(query, keep_blank_values=True):
        lowered = name.lower()
        if lowered in CREDENTIAL_PARAMS or (lowered in AZURE_ROUTING_PARAMS and not azure_path):
            return name
    return None
