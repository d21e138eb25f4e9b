"""`kt_trio sessions list|close` and `kt_trio keys ... --url`, run as a user runs them (a
subprocess), against a real gateway. Independent commands run at once: each is a Python start."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import trio
from trio_websocket import open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour
from tests.conftest import running
from tests.helpers import bearer, closed_with, make_key

Result = tuple[int, str, str]


async def _cli(*args: str, key: str | None = None) -> Result:
    env = {k: v for k, v in os.environ.items() if k != "KT_TRIO_ADMIN_KEY"}
    if key is not None:
        env["KT_TRIO_ADMIN_KEY"] = key
    done = await trio.run_process(
        [sys.executable, "-m", "kt_trio", *args], capture_stdout=True, capture_stderr=True, check=False, env=env
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def _all(*calls: tuple[tuple[str, ...], str | None]) -> list[Result]:
    """Runs the commands concurrently; their results in order."""
    results: list[Result | None] = [None] * len(calls)

    async def one(i: int, args: tuple[str, ...], key: str | None) -> None:
        results[i] = await _cli(*args, key=key)

    async with trio.open_nursery() as nursery:
        for i, (args, key) in enumerate(calls):
            nursery.start_soon(one, i, args, key)
    return [r for r in results if r is not None]


async def test_sessions_list_and_close(tmp_path: Path) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    key = make_key(tmp_path, "app", team="blue")
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path) as gw:
        url = gw.base_url
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
            await ws.send_message("hi")
            await ws.get_message()
            session_id = next(iter(gw.gateway.sessions)).id
            table, as_json, missing, bad_code = await _all(
                (("sessions", "list", "--url", url, "--key", admin), None),
                (("sessions", "list", "--json", "--url", url), admin),
                (("sessions", "close", "nope", "--url", url), admin),
                (("sessions", "close", session_id, "--code", "1005", "--url", url), admin),
            )
            assert table[0] == 0, table[2]
            header, row = table[1].splitlines()
            assert header.split()[:3] == ["ID", "ROUTE", "MODEL"]
            assert row.split()[:5] == [session_id, "/v1/realtime", "gpt-realtime", "app", "blue"]
            assert json.loads(as_json[1])[0]["messages_in"] == 1
            assert missing[0] == 1 and "HTTP 404" in missing[2]
            assert bad_code[0] == 1 and "HTTP 400" in bad_code[2]
            code, out, err = await _cli(
                "sessions", "close", session_id, "--code", "4002", "--reason", "from the cli", "--url", url, key=admin
            )
            assert code == 0 and session_id in out, err
            assert await closed_with(ws) == (4002, "from the cli")


async def test_keys_commands_with_url_act_through_the_admin_api(tmp_path: Path) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path) as gw:
        url = gw.base_url
        code, out, err = await _cli("keys", "create", "--name", "app", "--team", "blue", "--url", url, key=admin)
        assert code == 0, err
        key = out.strip()
        assert key.startswith("kt_gk_") and "created key 'app'" in err and key not in err
        (code, listing, _), (_, as_json, _) = await _all(
            (("keys", "list", "--url", url), admin), (("keys", "list", "--json", "--url", url), admin)
        )
        assert code == 0
        header, *lines = listing.splitlines()
        assert header.split()[:3] == ["NAME", "PREFIX", "PACK"]
        assert [line.split()[0] for line in lines] == ["ops", "app"] and key not in listing
        assert [k["team"] for k in json.loads(as_json)] == [None, "blue"]
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
            await ws.send_message("again")
            await ws.get_message()
            code, out, err = await _cli("keys", "revoke", "app", "--terminate", "--url", url, key=admin)
            assert code == 0 and "revoked key 'app'" in out, err
            assert await closed_with(ws) == (1008, "key revoked")


async def test_refusals_and_usage_errors_have_their_exit_codes(tmp_path: Path) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    user = make_key(tmp_path, "user")
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # bound, never listening: connections are refused
        async with running(MockBehaviour(mode="echo"), state_dir=tmp_path) as gw:
            url = gw.base_url
            not_admin, no_key, mixed, unreachable = await _all(
                (("keys", "list", "--url", url), user),
                (("sessions", "list", "--url", url), None),
                (("keys", "list", "--url", url, "--state-dir", str(tmp_path)), admin),
                (("sessions", "list", "--url", f"http://127.0.0.1:{closed_port}"), admin),
            )
    assert not_admin[0] == 1 and "HTTP 403" in not_admin[2] and "admin" in not_admin[2]
    assert user not in not_admin[2]
    assert no_key[0] == 2 and "KT_TRIO_ADMIN_KEY" in no_key[2]
    assert mixed[0] == 2 and "--url" in mixed[2]
    assert unreachable[0] == 2 and "cannot reach" in unreachable[2]
