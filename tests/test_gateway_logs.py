"""One structured log line per session start, session end and handshake refusal."""

from __future__ import annotations

import io
import json

import pytest
from trio_websocket import ConnectionRejected, open_websocket_url

from kt_trio.logs import setup_logging
from tests.conftest import running


async def test_json_lines_for_session_start_end_and_refusal() -> None:
    out = io.StringIO()
    setup_logging("info", "json", stream=out)
    try:
        async with running(secrets={"mock": "sk-never-logged"}) as gw:
            headers = [("Authorization", "Bearer sk-also-never-logged")]
            async with open_websocket_url(gw.ws_url(), extra_headers=headers) as ws:
                await ws.get_message()
                await ws.send_message('{"type":"conversation.item.create","item":{"content":"secret words"}}')
                await ws.get_message()
            with pytest.raises(ConnectionRejected):
                async with open_websocket_url(gw.ws_url(model="unknown")):
                    pass
            await gw.gateway.wait_sessions(lambda n: n == 0)
    finally:
        setup_logging("info", "text")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    by_msg = {line["msg"]: line for line in lines}
    assert by_msg["session start"]["route"] == "/v1/realtime"
    end = by_msg["session end"]
    assert end["close_code"] == 1000 and end["messages_in"] == 1 and end["closed_by"] == "client"
    assert by_msg["handshake refused"]["status"] == 404
    text = out.getvalue()
    assert "sk-never-logged" not in text and "sk-also-never-logged" not in text and "secret words" not in text
