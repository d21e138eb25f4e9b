"""The value rules the configuration schema's field metadata names, and the messages they give.

`CHECKS` maps a field's `check` (`positive`, `non_negative`, `unit_interval`, `cidr`, `url`,
`url_part`) to a function returning what is wrong with a value, or None; `bounds_problem`
applies a field's `min` / `max` (and `DEFAULT_MAX_NUMBER` to every number without a `max`);
`secret_problem` says what is wrong with a secret for an HTTP header. No message ever quotes a
URL or a secret: either may come from the environment or carry credentials.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

_URL_SCHEMES = ("http://", "https://", "ws://", "wss://")
# A number with no `max` of its own still has this ceiling: past it, a count is a typo and a
# duration (in any unit) is longer than a gateway runs, and some arithmetic would overflow.
DEFAULT_MAX_NUMBER = 1_000_000_000
# One DNS label: letters, digits, '-' and '_' (seen in service names), 1 to 63 of them.
_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def _check_positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _check_non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be 0 or greater"


def _check_unit_interval(value: Any) -> str | None:
    return None if 0 <= value <= 1 else "must be between 0 and 1"


def _check_cidr(value: Any) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"'{value}' is not an IP network (like 10.0.0.0/8 or 192.168.1.7)"
    return None


def _printable_problem(value: str) -> str | None:
    """Why `value` cannot go on the wire as written (a URL or header), without echoing it."""
    for index, char in enumerate(value):
        if char in "\r\n":
            where = (
                "at the end (a trailing newline?)" if index >= len(value.rstrip("\r\n")) else f"at position {index + 1}"
            )
            return f"contains a line break {where}"
        if ord(char) < 0x20 or ord(char) == 0x7F:
            return f"contains a control character at position {index + 1}"
        if ord(char) > 0x7E:
            return f"contains a non-ASCII character at position {index + 1}"
    return None


def _host_problem(host: str) -> str | None:
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        return "has an invalid host name"
    return None


def _check_url(value: Any) -> str | None:
    # Messages never quote the URL: it may come from the environment, or carry credentials.
    if not value.startswith(_URL_SCHEMES):
        return "must be a URL starting with http://, https://, ws:// or wss://"
    problem = _printable_problem(value)
    if problem is None and " " in value:
        problem = "contains a space"
    if problem is not None:
        return f"must be printable ASCII (percent-encode anything else): it {problem}"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return "has an invalid host or port (the port must be a number from 1 to 65535)"
    if port == 0:
        return "has an invalid port (the port must be a number from 1 to 65535)"
    if not parts.hostname:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (use secret_key_ref)"
    if parts.fragment:
        return "must not have a #fragment"
    return _host_problem(parts.hostname)


def _check_url_part(value: Any) -> str | None:
    """A value the gateway puts into an upstream URL (azure `deployment`, `api_version`)."""
    problem = _printable_problem(value) or ("contains a space" if " " in value else None)
    if problem is None and not value:
        problem = "is empty"
    return None if problem is None else f"must be printable ASCII without spaces: it {problem}"


def secret_message(name: str, target_id: Any, problem: str) -> str:
    return f"environment variable {name} (the secret of target '{target_id}') {problem}; its value is not shown"


def secret_problem(value: str) -> str | None:
    """What is wrong with a secret's value for an HTTP header, never quoting the value."""
    if not value:
        return "is empty"
    if value != value.strip(" \t"):
        return "starts or ends with whitespace"
    return _printable_problem(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def bounds_problem(value: float, low: float | None, high: float | None) -> str | None:
    """`min` / `max` of the field's metadata (inclusive); every number has a ceiling."""
    if low is not None and value < low:
        return f"must be at least {_number(low)}"
    ceiling = DEFAULT_MAX_NUMBER if high is None else high
    if value > ceiling:
        return f"must be at most {_number(ceiling)}"
    return None


# Rules named by the schema's field metadata `check`.
CHECKS: Mapping[str, Callable[[Any], str | None]] = {
    "positive": _check_positive,
    "non_negative": _check_non_negative,
    "unit_interval": _check_unit_interval,
    "cidr": _check_cidr,
    "url": _check_url,
    "url_part": _check_url_part,
}
