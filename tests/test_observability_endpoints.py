"""The gateway's own `/ws/events` and `/metrics`, on the shared port, fed by real sessions."""

from __future__ import annotations

import json

from trio_websocket import ConnectionRejected, open_websocket_url

from tests.conftest import running
from tests.helpers import http_get, samples


async def test_event_stream_and_metrics_see_a_session() -> None:
    async with running(chain=["pii-detector"]) as gw:
        events_url = f"ws://127.0.0.1:{gw.port}/ws/events?types=audit,usage"
        async with open_websocket_url(events_url) as events:
            async with open_websocket_url(gw.ws_url()) as ws:
                await ws.get_message()
                await ws.send_message(
                    json.dumps(
                        {
                            "type": "conversation.item.create",
                            "item": {
                                "type": "message",
                                "role": "user",
                                "content": [{"type": "input_text", "text": "write to jo@example.com"}],
                            },
                        }
                    )
                )
                await ws.send_message(json.dumps({"type": "response.create"}))
                while json.loads(await ws.get_message())["type"] != "response.done":
                    pass
            seen = []
            while not seen or not (seen[-1]["type"] == "usage" and seen[-1]["payload"].get("scope") == "session"):
                seen.append(json.loads(await events.get_message()))
        kinds = [(e["type"], e["payload"].get("event") or e["payload"].get("scope")) for e in seen]
        assert ("usage", "response") in kinds and ("usage", "session") in kinds
        assert any(e["type"] == "audit" and e["payload"].get("policy") == "pii-detector" for e in seen)
        assert "jo@example.com" not in json.dumps(seen)
        assert all(e["ts"].endswith("Z") or "+" in e["ts"] for e in seen)

        status, body = await http_get(gw.port, "/metrics")
        assert status == 200
        values = samples(body.decode())
        assert (
            values[
                (
                    "kt_sessions_total",
                    (("close_code", "1000"), ("route", "/v1/realtime"), ("target", "mock"), ("team", "none")),
                )
            ]
            == 1
        )
        assert values[("kt_messages_total", (("direction", "input"),))] == 2
        assert values[("kt_policy_decisions_total", (("action", "redact"), ("policy", "pii-detector")))] == 1
        assert values[("kt_sessions_active", ())] == 0
        token_count = (
            "kt_gen_ai_client_token_usage_count",
            (
                ("gen_ai_request_model", "gpt-realtime"),
                ("gen_ai_token_type", "input"),
                ("target", "mock"),
                ("team", "none"),
            ),
        )
        assert values[token_count] == 1


async def test_refused_handshakes_are_counted_by_reason() -> None:
    async with running() as gw:
        for _ in range(2):
            try:
                async with open_websocket_url(gw.ws_url(model="nope")):
                    pass
            except ConnectionRejected as exc:
                assert exc.status_code == 404
        _, body = await http_get(gw.port, "/metrics")
        values = samples(body.decode())
        assert values[("kt_handshake_rejections_total", (("reason", "model_not_found"),))] == 2
