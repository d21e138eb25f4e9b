"""Connection admission: who the client is (its IP) and whether it may open another session.

Counts live in one place (this object, one per gateway) and a session holds a `Ticket` for its
whole life. The ticket is released exactly once however the session ends (normal close, error,
cancellation, shutdown): `release()` is idempotent, and using the ticket as a context manager
(``with ticket:``) releases it on every exit path, so the counters always return to zero.

A ticket holds one slot in each of several counters, so limits beyond per-IP (per API key,
per team) are added by passing more counters to `admit`, not by a second bookkeeping layer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from types import TracebackType

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ConnectionCounter:
    """Concurrent connections per key (an IP, an API key id, ...), with an optional limit.

    An entry exists only while its count is above zero, so the map is bounded by the number of
    live connections, not by every key ever seen.
    """

    __slots__ = ("_counts", "limit", "name")

    def __init__(self, name: str, limit: int | None = None) -> None:
        if limit is not None and limit < 0:
            raise ValueError(f"{name} limit must be >= 0 or None, got {limit!r}")
        self.name = name
        self.limit = limit
        self._counts: dict[str, int] = {}

    def active(self, key: str) -> int:
        return self._counts.get(key, 0)

    @property
    def keys_active(self) -> int:
        """How many distinct keys hold at least one connection."""
        return len(self._counts)

    def has_room(self, key: str, limit: int | None = None) -> bool:
        """Whether one more connection fits; `limit` overrides the counter's (per-key limits)."""
        limit = self.limit if limit is None else limit
        return limit is None or self._counts.get(key, 0) < limit

    def _add(self, key: str) -> None:
        self._counts[key] = self._counts.get(key, 0) + 1

    def _remove(self, key: str) -> None:
        n = self._counts.get(key, 0) - 1
        if n > 0:
            self._counts[key] = n
        else:
            # Removed, not left at zero: a scan from many IPs must not grow this map for ever.
            self._counts.pop(key, None)


class Ticket:
    """One admitted session's slots. Release it exactly once; extra calls do nothing."""

    __slots__ = ("_admission", "_slots", "ip")

    def __init__(self, admission: Admission, ip: str, slots: Sequence[tuple[ConnectionCounter, str]]) -> None:
        self._admission: Admission | None = admission
        self.ip = ip
        self._slots = tuple(slots)

    @property
    def released(self) -> bool:
        return self._admission is None

    def release(self) -> None:
        admission, self._admission = self._admission, None
        if admission is None:
            return
        for counter, key in self._slots:
            counter._remove(key)
        admission._tickets -= 1

    def __enter__(self) -> Ticket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class Admission:
    """Per-IP concurrent-session limits (`providers.rate_limit.per_ip.connections`) and the
    client IP as seen through trusted proxies (`gateway.trusted_proxies`).

    `per_ip_limit=None` means unlimited (sessions are still counted, for metrics and tests).
    `retry_after_secs` is the `Retry-After` a 429 should carry: the gateway cannot know when one
    of the client's own sessions will end, so it is a fixed, short back-off.
    """

    __slots__ = ("_tickets", "per_ip", "retry_after_secs", "trusted_proxies")

    def __init__(
        self,
        per_ip_limit: int | None = None,
        trusted_proxies: Iterable[str] = (),
        *,
        retry_after_secs: int = 1,
    ) -> None:
        # strict=False accepts "10.0.0.1/8" as 10.0.0.0/8, the way proxies' own configs read.
        self.trusted_proxies: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(c.strip(), strict=False) for c in trusted_proxies
        )
        self.per_ip = ConnectionCounter("per_ip", per_ip_limit)
        self.retry_after_secs = retry_after_secs
        self._tickets = 0

    def reconfigure(self, per_ip_limit: int | None, trusted_proxies: Iterable[str]) -> None:
        """A config reload: new limits for new sessions. The counts stay, so sessions already
        open keep their slots; a lowered limit refuses new ones until enough of them end."""
        self.trusted_proxies = Admission(None, trusted_proxies).trusted_proxies
        self.per_ip.limit = per_ip_limit

    # -- who is the client ------------------------------------------------------------------------

    def is_trusted(self, ip: str) -> bool:
        addr = _parse_ip(ip)
        return addr is not None and self._trusted(addr)

    def _trusted(self, addr: IPAddress) -> bool:
        return any(addr.version == net.version and addr in net for net in self.trusted_proxies)

    def client_ip(self, peer_ip: str, x_forwarded_for: str | None) -> str:
        """The IP to count this connection against.

        `X-Forwarded-For` is honoured only when the TCP peer is itself a trusted proxy; by default
        (no trusted proxies) it is ignored, because any client can write the header. When it is
        honoured, the list is walked from the right, skipping addresses inside a trusted CIDR; the
        first untrusted address is the client. This is the standard approach (nginx's
        `real_ip_recursive on`, MDN's guidance on X-Forwarded-For): every entry right of that one
        was appended by a proxy we trust, while entries to its left were written by the client
        and may be forged. If the walk meets an entry that is not an IP address, it stops and
        uses the nearest address it trusts to be real (the last hop it walked), since nothing
        further left can be believed. Every hop trusted → the leftmost one (an internal caller).
        """
        peer = _parse_ip(peer_ip)
        if peer is None:
            return peer_ip
        if x_forwarded_for is None or not self.trusted_proxies or not self._trusted(peer):
            return str(peer)
        hop = peer
        for raw in reversed(x_forwarded_for.split(",")):
            entry = raw.strip()
            if not entry:
                continue
            addr = _parse_ip(entry)
            if addr is None:
                break
            hop = addr
            if not self._trusted(addr):
                break
        return str(hop)

    # -- may it connect ---------------------------------------------------------------------------

    def admit(
        self,
        ip: str,
        extra: Iterable[tuple[ConnectionCounter, str, int | None]] = (),
    ) -> Ticket | None:
        """A ticket for one more session from `ip`, or None if a limit is reached (answer 429).

        `extra` adds further slots to the same ticket as `(counter, key, limit)`, e.g. a per-key
        counter with that key's own limit (None = the counter's default). All slots are taken or
        none: a refusal leaves every counter as it was.
        """
        wanted: list[tuple[ConnectionCounter, str, int | None]] = [(self.per_ip, ip, None), *extra]
        if not all(counter.has_room(key, limit) for counter, key, limit in wanted):
            return None
        # No await between the check above and the take below, so with trio's single thread no
        # other session can slip in between: check-then-take is atomic here.
        for counter, key, _ in wanted:
            counter._add(key)
        self._tickets += 1
        return Ticket(self, ip, [(counter, key) for counter, key, _ in wanted])

    def active(self, ip: str) -> int:
        """Live sessions counted against `ip`."""
        return self.per_ip.active(ip)

    @property
    def total_active(self) -> int:
        """Live (admitted, not yet released) sessions, across all IPs and routes."""
        return self._tickets


def _parse_ip(text: str) -> IPAddress | None:
    """An address from a peer name or an X-Forwarded-For entry, or None if it is not one.

    Accepts the forms proxies write: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`.
    An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, what a dual-stack socket reports) becomes the
    IPv4 address, so one client is not counted under two names.
    """
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr
