"""Per-IP admission, idempotent tickets, and the client IP through trusted proxies."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from kt_trio.governance.admission import Admission, ConnectionCounter


def test_sixth_concurrent_session_from_one_ip_is_refused() -> None:
    adm = Admission(per_ip_limit=5)
    tickets = [adm.admit("203.0.113.7") for _ in range(5)]
    assert all(t is not None for t in tickets)
    assert adm.admit("203.0.113.7") is None
    assert adm.active("203.0.113.7") == 5
    # Another IP is unaffected.
    other = adm.admit("198.51.100.1")
    assert other is not None
    assert adm.total_active == 6
    # One closes: room for one more.
    t0 = tickets[0]
    assert t0 is not None
    t0.release()
    assert adm.admit("203.0.113.7") is not None


def test_release_is_idempotent_and_counters_return_to_zero() -> None:
    adm = Admission(per_ip_limit=2)
    a = adm.admit("10.1.1.1")
    b = adm.admit("10.1.1.1")
    assert a is not None and b is not None
    a.release()
    a.release()  # a second release is a no-op, not a second decrement
    assert adm.active("10.1.1.1") == 1
    assert adm.total_active == 1
    b.release()
    assert a.released and b.released
    assert adm.active("10.1.1.1") == 0
    assert adm.total_active == 0
    assert adm.per_ip.keys_active == 0  # entry removed, not left at zero


async def test_ticket_released_on_every_way_a_session_ends(autojump_clock: trio.testing.MockClock) -> None:
    adm = Admission(per_ip_limit=5)
    ip = "192.0.2.1"

    async def session(how: str) -> None:
        ticket = adm.admit(ip)
        assert ticket is not None
        with ticket:
            assert adm.active(ip) >= 1 and not ticket.released
            if how == "error":
                raise RuntimeError("upstream broke")
            if how == "cancel":
                await trio.sleep_forever()
            if how == "release":
                ticket.release()  # a normal close may release early; the `with` exit is then a no-op
                assert ticket.released and adm.active(ip) == 0
            # "leave": the block just ends, and its exit releases

    with pytest.raises(RuntimeError):
        await session("error")
    assert adm.active(ip) == 0
    with trio.move_on_after(0.01):
        await session("cancel")
    assert adm.active(ip) == 0
    await session("release")
    assert adm.active(ip) == 0 and adm.total_active == 0
    await session("leave")  # no release() call: leaving the `with` block is what releases
    assert adm.active(ip) == 0 and adm.total_active == 0
    async with trio.open_nursery() as nursery:  # shutdown: the whole nursery is cancelled
        for _ in range(5):
            nursery.start_soon(session, "cancel")
        await trio.testing.wait_all_tasks_blocked()
        assert adm.active(ip) == 5
        assert adm.admit(ip) is None
        nursery.cancel_scope.cancel()
    assert adm.active(ip) == 0
    assert adm.total_active == 0
    assert adm.per_ip.keys_active == 0


def test_unlimited_still_counts() -> None:
    adm = Admission(per_ip_limit=None)
    ts = [adm.admit("::1") for _ in range(50)]
    assert adm.active("::1") == 50
    for t in ts:
        assert t is not None
        t.release()
    assert adm.total_active == 0


def test_extra_counters_all_or_nothing() -> None:
    adm = Admission(per_ip_limit=3)
    per_key = ConnectionCounter("per_key", limit=10)
    t1 = adm.admit("10.0.0.1", [(per_key, "key_a", 1)])  # this key's own limit: 1
    assert t1 is not None
    assert per_key.active("key_a") == 1
    # Refused by the key limit: the per-IP slot must not be taken either.
    assert adm.admit("10.0.0.1", [(per_key, "key_a", 1)]) is None
    assert adm.active("10.0.0.1") == 1
    t1.release()
    t1.release()
    assert per_key.active("key_a") == 0 and adm.active("10.0.0.1") == 0


# -- client IP ------------------------------------------------------------------------------------


def test_xff_ignored_by_default() -> None:
    adm = Admission(5)
    assert adm.client_ip("198.51.100.9", "1.2.3.4") == "198.51.100.9"


def test_xff_ignored_from_untrusted_peer() -> None:
    adm = Admission(5, ["10.0.0.0/8"])
    assert adm.client_ip("198.51.100.9", "1.2.3.4") == "198.51.100.9"


def test_xff_honoured_from_trusted_proxy_walking_from_the_right() -> None:
    adm = Admission(5, ["10.0.0.0/8", "192.168.0.0/16"])
    assert adm.client_ip("10.0.0.5", "203.0.113.50") == "203.0.113.50"
    # Forged left entries are ignored: the first untrusted from the right is the client.
    assert adm.client_ip("10.0.0.5", "6.6.6.6, 203.0.113.50, 192.168.1.1") == "203.0.113.50"
    # Every hop trusted: the leftmost.
    assert adm.client_ip("10.0.0.5", "10.9.9.9, 192.168.1.1") == "10.9.9.9"
    # Garbage where an address belongs: stop at the last hop known to be real.
    assert adm.client_ip("10.0.0.5", "203.0.113.50, unknown") == "10.0.0.5"
    assert adm.client_ip("10.0.0.5", "203.0.113.50, nonsense, 192.168.1.1") == "192.168.1.1"
    assert adm.client_ip("10.0.0.5", None) == "10.0.0.5"
    assert adm.client_ip("10.0.0.5", "") == "10.0.0.5"


def test_address_forms() -> None:
    adm = Admission(5, ["10.0.0.0/8", "fd00::/8"])
    assert adm.client_ip("::ffff:198.51.100.9", None) == "198.51.100.9"
    assert adm.client_ip("::ffff:10.0.0.1", "203.0.113.5:4711") == "203.0.113.5"
    assert adm.client_ip("fd00::1", "[2001:db8::7]:443") == "2001:db8::7"
    assert adm.is_trusted("10.2.3.4") and not adm.is_trusted("11.0.0.1") and not adm.is_trusted("x")
