"""`KeyRing` and `decide`: expiry, scopes, unknown keys, daily token budgets, no key at rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from kt_trio.keys import KeyRing, KeyStore, db_path, scope_allows, scope_for_path
from tests import helpers

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
DAY = 86400.0


def make_key(state_dir: Path, name: str, **kwargs: object) -> str:
    """The shared `make_key`, with keys created at T0."""
    return helpers.make_key(state_dir, name, now=T0, **kwargs)


async def test_expired_key_is_401_from_its_expiry_on(tmp_path: Path) -> None:
    key = make_key(tmp_path, "temp", expires_at=T0 + DAY)
    async with await KeyRing.open(tmp_path) as ring:
        assert (await ring.authenticate(key, scope="realtime", now=T0 + DAY - 1)).ok
        expired = await ring.authenticate(key, scope="realtime", now=T0 + DAY)
        assert (expired.ok, expired.status) == (False, 401)
        assert "expired" in expired.message and expired.key is not None and expired.key.name == "temp"


async def test_scopes_by_route(tmp_path: Path) -> None:
    chat_only = make_key(tmp_path, "chat-only", scopes=("chat",))
    admin = make_key(tmp_path, "admin", scopes=("admin",))
    async with await KeyRing.open(tmp_path) as ring:
        refused = await ring.authenticate(chat_only, scope=scope_for_path("/v1/realtime?model=x") or "", now=T0)
        assert (refused.ok, refused.status) == (False, 403)
        assert "'realtime' scope" in refused.message and refused.key is not None
        assert (await ring.authenticate(chat_only, scope="chat", now=T0)).ok
        assert (await ring.authenticate(admin, scope="events", now=T0)).ok  # admin implies events
        assert (await ring.authenticate(admin, scope="realtime", now=T0)).status == 403
    assert scope_for_path("/v1/responses") == "realtime" and scope_for_path("/ws/events") == "events"
    assert scope_for_path("/healthz") is None
    assert scope_allows(("events",), "events") and not scope_allows(("realtime",), "events")


async def test_missing_unknown_and_wrong_keys_are_401(tmp_path: Path) -> None:
    key = make_key(tmp_path, "alice")
    async with await KeyRing.open(tmp_path) as ring:
        for presented in (None, ""):
            missing = await ring.authenticate(presented, scope="realtime", now=T0)
            assert (missing.status, missing.key) == (401, None) and "missing" in missing.message
        forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")  # right prefix, wrong key
        for presented in ("sk-not-ours", "kt_gk_short", "kt_gk_" + "z" * 43, forged):
            unknown = await ring.authenticate(presented, scope="realtime", now=T0)
            assert (unknown.ok, unknown.status, unknown.key) == (False, 401, None)
            assert unknown.message == "invalid gateway key"


async def test_the_database_never_holds_the_key(tmp_path: Path) -> None:
    keys = [make_key(tmp_path, f"k{i}", team="t") for i in range(5)]
    async with await KeyRing.open(tmp_path) as ring:
        for key in keys:
            assert (await ring.authenticate(key, scope="realtime", now=T0)).ok
            await ring.record_tokens("k0", 10, now=T0)
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"kt_gk_" in data  # the prefixes are there (so the scan would see a key)...
    for key in keys:
        assert key.encode() not in data and key[18:].encode() not in data  # ...the secret part is not


async def test_daily_tokens_persist_and_each_alert_fires_once(tmp_path: Path) -> None:
    make_key(tmp_path, "alice", daily_tokens=1000)
    async with await KeyRing.open(tmp_path) as ring:
        first = await ring.record_tokens("alice", 400, now=T0)
        assert (first.used, first.limit, first.crossed, first.exceeded) == (400, 1000, (), False)
        second = await ring.record_tokens("alice", 100, now=T0 + 60)
        assert (second.used, second.crossed) == (500, (0.5,))  # exactly at the threshold
        assert (await ring.record_tokens("alice", 10, now=T0 + 120)).crossed == ()

    async with await KeyRing.open(tmp_path) as ring:  # a restart: the day's use is still there
        assert (await ring.daily_usage("alice", now=T0 + 180)).used == 510
        jump = await ring.record_tokens("alice", 600, now=T0 + 240)  # crosses 0.8 and 1.0 at once
        assert (jump.used, jump.crossed, jump.exceeded) == (1110, (0.8, 1.0), True)
        assert (await ring.record_tokens("alice", 5, now=T0 + 300)).crossed == ()
        next_day = await ring.record_tokens("alice", 5, now=T0 + DAY)  # a new UTC day starts from zero
        assert (next_day.used, next_day.day, next_day.crossed) == (5, "2027-01-16", ())
        unlimited = await ring.record_tokens("nobody", 5, now=T0)
        assert (unlimited.limit, unlimited.crossed, unlimited.exceeded) == (None, (), False)
        with pytest.raises(ValueError):
            await ring.record_tokens("alice", -1, now=T0)


async def test_last_used_is_noted_at_most_once_a_minute(tmp_path: Path) -> None:
    key = make_key(tmp_path, "alice")
    async with await KeyRing.open(tmp_path) as ring:
        await ring.authenticate(key, scope="realtime", now=T0)
        await ring.authenticate(key, scope="realtime", now=T0 + 30)
        store = KeyStore.open(db_path(tmp_path))
        assert (record := store.get("alice")) is not None and record.last_used_at == T0
        await ring.authenticate(key, scope="realtime", now=T0 + 61)
        assert (record := store.get("alice")) is not None and record.last_used_at == T0 + 61
        store.close()


async def test_two_gateways_share_a_budget_and_its_alerts(tmp_path: Path) -> None:
    make_key(tmp_path, "alice", daily_tokens=100)
    async with await KeyRing.open(tmp_path) as one, await KeyRing.open(tmp_path) as two:
        crossed: list[float] = []
        for i in range(10):
            ring = one if i % 2 else two
            crossed += (await ring.record_tokens("alice", 12, now=T0 + i)).crossed
        assert crossed == [0.5, 0.8, 1.0]
        assert (await one.daily_usage("alice", now=T0)).used == 120
