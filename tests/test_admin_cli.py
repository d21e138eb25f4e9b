"""`kt_trio sessions list|close` and `kt_trio keys ... --url`, run as a user runs them (a
subprocess), against a real gateway."""

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


async def _cli(*args: str, key: str | None = None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KT_TRIO_ADMIN_KEY"}
    if key is not None:
        env["KT_TRIO_ADMIN_KEY"] = key
    done = await trio.run_process(
        [sys.executable, "-m", "kt_trio", *args], capture_stdout=True, capture_stderr=True, check=False, env=env
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_sessions_and_keys_commands_through_the_admin_api(tmp_path: Path) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path) as gw:
        url = gw.base_url
        code, out, err = await _cli("keys", "create", "--name", "app", "--team", "blue", "--url", url, key=admin)
        assert code == 0, err
        key = out.strip()
        assert key.startswith("kt_gk_") and "created key 'app'" in err and key not in err

        code, out, _ = await _cli("keys", "list", "--url", url, key=admin)
        assert code == 0
        header, *lines = out.splitlines()
        assert header.split()[:3] == ["NAME", "PREFIX", "PACK"]
        assert [line.split()[0] for line in lines] == ["ops", "app"] and key not in out
        code, out, _ = await _cli("keys", "list", "--json", "--url", url, key=admin)
        assert [k["team"] for k in json.loads(out)] == [None, "blue"]

        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
            await ws.send_message("hi")
            await ws.get_message()
            session_id = next(iter(gw.gateway.sessions)).id
            code, out, _ = await _cli("sessions", "list", "--url", url, "--key", admin)
            assert code == 0
            header, row = out.splitlines()
            assert header.split()[:3] == ["ID", "ROUTE", "MODEL"]
            assert row.split()[:5] == [session_id, "/v1/realtime", "gpt-realtime", "app", "blue"]
            code, out, _ = await _cli("sessions", "list", "--json", "--url", url, key=admin)
            assert json.loads(out)[0]["messages_in"] == 1

            code, out, err = await _cli("sessions", "close", "nope", "--url", url, key=admin)
            assert code == 1 and "HTTP 404" in err
            code, out, err = await _cli("sessions", "close", session_id, "--code", "1005", "--url", url, key=admin)
            assert code == 1 and "HTTP 400" in err
            code, out, _ = await _cli(
                "sessions", "close", session_id, "--code", "4002", "--reason", "from the cli", "--url", url, key=admin
            )
            assert code == 0 and session_id in out
            assert await closed_with(ws) == (4002, "from the cli")

        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
            await ws.send_message("again")
            await ws.get_message()
            code, out, err = await _cli("keys", "revoke", "app", "--terminate", "--url", url, key=admin)
            assert code == 0 and "revoked key 'app'" in out, err
            assert await closed_with(ws) == (1008, "key revoked")

        # Refusals: a key without admin (1), no key at all (2), a gateway not there (2).
        code, _, err = await _cli("sessions", "list", "--url", url, key=key)
        assert code == 1 and "HTTP 401" in err and key not in err
        user = make_key(tmp_path, "user")
        code, _, err = await _cli("keys", "list", "--url", url, key=user)
        assert code == 1 and "HTTP 403" in err and "admin" in err
        code, _, err = await _cli("sessions", "list", "--url", url)
        assert code == 2 and "KT_TRIO_ADMIN_KEY" in err
        code, _, err = await _cli("keys", "list", "--url", url, "--state-dir", str(tmp_path), key=admin)
        assert code == 2
        with trio.socket.socket() as sock:
            await sock.bind(("127.0.0.1", 0))
            closed_port = sock.getsockname()[1]
        code, _, err = await _cli("sessions", "list", "--url", f"http://127.0.0.1:{closed_port}", key=admin)
        assert code == 2 and "cannot reach" in err
