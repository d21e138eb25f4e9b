"""Small helpers shared by several test modules (test modules never import from each other)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from trio_websocket import ConnectionClosed, ConnectionRejected, WebSocketConnection, open_websocket_url

from kt_trio.audit.store import db_path as audit_db_path
from kt_trio.keys import KeyStore
from kt_trio.keys import db_path as keys_db_path

# -- gateway keys (keys.db) ------------------------------------------------------------------------


def make_key(state_dir: Path, name: str, **options: object) -> str:
    """Creates key `name` in `<state_dir>/keys.db` as `kt_trio keys create` would; the secret."""
    store = KeyStore.open(keys_db_path(state_dir))
    try:
        key, _ = store.create_key(name, **options)  # type: ignore[arg-type]
        return key
    finally:
        store.close()


def revoke(state_dir: Path, name: str, *, terminate: bool) -> None:
    store = KeyStore.open(keys_db_path(state_dir))
    try:
        store.revoke(name, terminate=terminate)
    finally:
        store.close()


def bearer(key: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {key}")]


# -- WebSocket handshakes ----------------------------------------------------------------------------


async def rejected(url: str, headers: list[tuple[str, str]] | None = None) -> ConnectionRejected:
    """The refusal of a handshake that must be refused (the test fails if it is accepted)."""
    with pytest.raises(ConnectionRejected) as info:
        async with open_websocket_url(url, extra_headers=headers or []):
            pass
    return info.value


async def rejected_status(url: str, headers: list[tuple[str, str]] | None = None) -> int | None:
    """The status of a refused handshake, or None when it was accepted."""
    try:
        async with open_websocket_url(url, extra_headers=headers or []):
            return None
    except ConnectionRejected as exc:
        return exc.status_code


async def closed_with(ws: WebSocketConnection) -> tuple[int, str]:
    """Reads until the gateway closes the connection; its close code and reason."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.get_message()
    return info.value.reason.code, info.value.reason.reason


# -- the audit log (audit.db) ------------------------------------------------------------------------


def audit_records(state_dir: Path) -> list[tuple[int, str, str | None, dict[str, Any]]]:
    """(seq, kind, session_id, data) of every audit record, through a read-only connection of our own."""
    conn = sqlite3.connect(f"file:{audit_db_path(state_dir)}?mode=ro", uri=True)
    try:
        found = conn.execute("SELECT seq, kind, session_id, data FROM audit_records ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [(seq, kind, sid, json.loads(data)) for seq, kind, sid, data in found]


def rows(state_dir: Path) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(kind, session_id, data) of every audit record, in order."""
    return [(kind, sid, data) for _, kind, sid, data in audit_records(state_dir)]


# -- plain HTTP on the gateway's port ----------------------------------------------------------------


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    """GET `path` with `Connection: close`; the status and the body (everything after the head)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := await stream.receive_some(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus exposition text as {(sample name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def typed_policies(raw: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """`policy.<name>` blocks written as dicts in a test, as the typed settings the loader makes."""
    from kt_trio.config.schema import POLICY_SETTINGS

    return {
        name: POLICY_SETTINGS[name](**{k: tuple(v) if isinstance(v, list) else v for k, v in block.items()})
        for name, block in (raw or {}).items()
    }


async def served_port(proc: trio.Process) -> int:
    """The port a `kt_trio serve --port 0` process printed it serves on (its stdout, piped)."""
    assert proc.stdout is not None
    out = b""
    with trio.fail_after(30):
        while b"(health:" not in out:
            chunk = await proc.stdout.receive_some(4096)
            assert chunk, f"serve exited before serving: {out!r}"
            out += chunk
    # "kt_trio serving pack P on ws://127.0.0.1:PORT (health: ...)"
    return int(out.split(b"ws://127.0.0.1:")[1].split(b" ")[0])
