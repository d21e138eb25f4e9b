"""The audit log fed by real sessions through the gateway (in process, and as a process killed -9)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import trio
from trio_websocket import open_websocket_url

from kt_trio.audit.reader import verify
from kt_trio.audit.store import db_path
from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from tests.conftest import running, serve_process
from tests.helpers import rows

SECRET_PHONE = "415-555-0132"


async def test_session_start_messages_and_end_are_recorded_without_raw_pii(tmp_path: Path) -> None:
    extra = "policy:\n  audit-logger:\n    immutable: true\n    log_all_access: true\n    include_content: true\n"
    chain = ["pii-detector", "audit-logger"]
    async with running(chain=chain, extra=extra, websocket={"idle_timeout_seconds": 30}, state_dir=tmp_path) as gw:
        async with open_websocket_url(gw.ws_url(), extra_headers=[("User-Agent", "audit-test/1.0")]) as ws:
            await ws.get_message()
            item = {
                "type": "conversation.item.create",
                "event_id": "evt_pii",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": f"call me on {SECRET_PHONE}"}],
                },
            }
            await ws.send_message(json.dumps(item))
            await ws.send_message(json.dumps({"type": "response.create", "event_id": "evt_go"}))
            while json.loads(await ws.get_message())["type"] != "response.done":
                pass
            await ws.aclose(1000, "done")
        await gw.gateway.wait_sessions(lambda n: n == 0)
    # The gateway has stopped: its audit log is flushed and closed.
    records = rows(tmp_path)
    kinds = [kind for kind, _, _ in records]
    assert kinds[0] == "session_start" and kinds[-1] == "session_end"
    start = records[0][2]
    assert start["route"] == "/v1/realtime" and start["target"] == "mock" and start["user_agent"] == "audit-test/1.0"
    messages = [data for kind, _, data in records if kind == "message"]
    inputs = [m for m in messages if m["direction"] == "input"]
    assert [m["event_id"] for m in inputs] == ["evt_pii", "evt_go"]
    assert inputs[0]["decisions"][0]["redacted_kinds"] == ["PHONE"]
    assert "[REDACTED:PHONE]" in inputs[0]["content"]
    assert any(m["event_type"] == "response.done" for m in messages if m["direction"] == "output")
    end = records[-1][2]
    assert end["close_code"] == 1000 and end["closed_by"] == "client"
    assert end["usage"]["total_tokens"] > 0
    # Raw PII never reaches the disk: not in the database, nor its WAL.
    for file in tmp_path.iterdir():
        assert SECRET_PHONE.encode() not in file.read_bytes(), file.name
    assert verify(db_path(tmp_path)).ok


async def test_strict_audit_survives_kill_9(tmp_path: Path) -> None:
    """Every message the provider received has its committed audit record, even after kill -9."""
    async with open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "strict.yaml"
        config.write_text(
            f"gateway:\n  state_dir: {tmp_path / 'state'}\n"
            "providers:\n  targets:\n"
            f"    - id: mock\n      provider: openai\n      model: m\n      base_url: {mock.url}/v1/realtime\n"
            "policies:\n  chain: [audit-logger]\n"
            "policy:\n  audit-logger:\n    log_all_access: true\n    durability: strict\n"
        )
        async with serve_process("--config", str(config), "--port", "0", ready=b"health:") as (proc, out):
            port = int(out.split(b"ws://127.0.0.1:")[1].split(b" ")[0])
            with trio.fail_after(30):
                async with open_websocket_url(f"ws://127.0.0.1:{port}/v1/realtime", disconnect_timeout=1) as ws:
                    for i in range(300):
                        await ws.send_message(json.dumps({"type": "conversation.item.create", "event_id": f"e{i}"}))
                        if i == 150:
                            await mock.wait_for_messages(100)
                            proc.send_signal(signal.SIGKILL)
                            break
        received = [json.loads(m)["event_id"] for m in mock.connections[0].messages]
    assert len(received) >= 100
    audited = {
        d["event_id"] for kind, _, d in rows(tmp_path / "state") if kind == "message" and d["direction"] == "input"
    }
    assert set(received) <= audited
    assert verify(db_path(tmp_path / "state")).ok


async def test_content_of_a_message_forwarded_unread_is_stored_unmasked(tmp_path: Path) -> None:
    """With no text policy the client's frame is forwarded as it arrived (still masked); the
    audit record must hold the text, not the masked bytes. Audio is never stored."""
    extra = "policy:\n  audit-logger:\n    log_all_access: true\n    include_content: true\n"
    async with running(MockBehaviour(mode="echo"), chain=["audit-logger"], extra=extra, state_dir=tmp_path) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            text = json.dumps({"type": "conversation.item.create", "event_id": "plain"})
            audio = json.dumps({"type": "input_audio_buffer.append", "audio": "QUJD" * 100})
            for message in (text, audio):
                await ws.send_message(message)
                await ws.get_message()
        await gw.gateway.wait_sessions(lambda n: n == 0)
    inputs = [d for kind, _, d in rows(tmp_path) if kind == "message" and d["direction"] == "input"]
    assert inputs[0]["content"] == text
    assert inputs[1]["event_type"] == "input_audio_buffer.append" and inputs[1]["content"] is None
