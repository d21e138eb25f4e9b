"""Unit tests of the pure parts of client secrets: the bounded table and the Redis record."""

from __future__ import annotations

import pytest

from kt_trio.keys.client_secrets import ClientSecret, ClientSecrets, SecretTable, TooManySecrets, digest_of
from kt_trio.state.client_secrets import decode, encode


def test_the_table_is_bounded_and_makes_room_as_records_expire() -> None:
    table = SecretTable(max_live=2)
    assert table.add(b"a", ClientSecret("k", 10.0), now=0)
    assert table.add(b"b", ClientSecret("k", 20.0), now=0)
    assert not table.add(b"c", ClientSecret("k", 30.0), now=5)  # full of live records
    assert table.get(b"a", now=9.9) == ClientSecret("k", 10.0)
    assert table.get(b"a", now=10) is None  # expired at expires_at
    assert table.add(b"c", ClientSecret("k", 30.0), now=10)  # a's place
    assert len(table) == 2 and table.get(b"c", now=10) is not None


async def test_minting_beyond_the_bound_is_refused_and_only_the_digest_is_kept() -> None:
    local = ClientSecrets(max_live=1)
    value, expires_at = await local.mint("voice-app", 60, now=1000.5)
    assert expires_at == 1060.0  # whole seconds
    assert await local.resolve(value, now=1001) == ClientSecret("voice-app", 1060.0)
    assert await local.resolve(value + "x", now=1001) is None
    assert value not in repr(local.table.__dict__) and digest_of(value) in local.table.__dict__["_by_digest"]
    with pytest.raises(TooManySecrets):
        await local.mint("voice-app", 60, now=1001)


def test_the_redis_record_round_trips_and_anything_else_is_no_secret() -> None:
    record = ClientSecret("voice-app", 1060.0)
    assert decode(encode(record)) == record
    for raw in ("", "null", "[]", "{}", '{"key": 1, "expires_at": 2}', '{"key": "k", "expires_at": true}', "{"):
        assert decode(raw) is None
